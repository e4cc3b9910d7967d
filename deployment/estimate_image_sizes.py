"""Estimate each image's size from what this machine can measure (no Docker engine here).

    .venv/bin/python deployment/estimate_image_sizes.py [--cpu-wheel PATH]

Measured: the installed size of every pinned distribution (the files its
RECORD lists, in the dev environment, which holds every component's pins);
the CUDA build of torch and its nvidia/triton companions as installed from the
default index; the CPU torch wheel when one is on disk (unpacked in a scratch
folder); the published size of each baked weights file (torchvision's
metadata). Estimated: the python:3.11-slim layers, and torchvision's CPU build
(taken as the default-index build, an upper bound).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.deployment.kit import distribution_closure  # noqa: E402 - after the path is set

MB = 1_000_000
# python:3.11-slim-bookworm unpacked (Debian slim + CPython); an estimate, not measured here.
PYTHON_SLIM_MB = 125
DEFAULT_CPU_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
TORCH_FAMILY = {"torch", "torchvision"}
CUDA_PREFIXES = ("nvidia-", "cuda-", "triton")


def installed_bytes(distribution: str) -> int:
    """Bytes of the files a distribution installed (its RECORD), 0 if absent."""
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        return 0
    total = 0
    for file in files:
        path = Path(file.locate())
        if path.is_file():
            total += path.stat().st_size
    return total


def unpacked_wheel_bytes(wheel: Path) -> int:
    with tempfile.TemporaryDirectory() as scratch, zipfile.ZipFile(wheel) as archive:
        archive.extractall(scratch)
        return sum(p.stat().st_size for p in Path(scratch).rglob("*") if p.is_file())


def weights_bytes(models: list[str]) -> int:
    from torchvision.models import get_weight

    from classifier.models import CATALOG

    total = 0
    for name in models:
        weights = get_weight(CATALOG[name].torchvision_weights)
        total += int(weights.meta["_file_size"] * 1024 * 1024)  # published size, in MiB
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-wheel", type=Path, default=DEFAULT_CPU_WHEEL)
    args = parser.parse_args(argv)

    serving = distribution_closure(("torch.txt", "serving.txt"))
    cuda_companions = {d for d in serving if d.startswith(CUDA_PREFIXES)}
    serving_rest = serving - TORCH_FAMILY - cuda_companions
    rest_bytes = sum(installed_bytes(d) for d in serving_rest)
    cuda_torch = installed_bytes("torch")
    cuda_extra = sum(installed_bytes(d) for d in cuda_companions)
    torchvision = installed_bytes("torchvision")
    if args.cpu_wheel.is_file():
        cpu_torch, cpu_note = unpacked_wheel_bytes(args.cpu_wheel), "measured (wheel unpacked)"
        print(f"CPU wheel {args.cpu_wheel.name}: {args.cpu_wheel.stat().st_size / MB:.0f} MB")
    else:
        cpu_torch, cpu_note = 0, "no CPU wheel on disk"
    prefetch = ["resnet50", "resnet18", "mobilenet_v3_large", "efficientnet_b0"]
    weights = weights_bytes(prefetch)
    frontend = sum(installed_bytes(d) for d in distribution_closure(("frontend.txt",)))
    gateway = sum(installed_bytes(d) for d in distribution_closure(("gateway.txt",)))

    rows = [
        ("python:3.11-slim (estimated)", PYTHON_SLIM_MB * MB, PYTHON_SLIM_MB * MB),
        (f"torch ({cpu_note} / CUDA build measured)", cpu_torch, cuda_torch),
        ("CUDA libraries: nvidia-*, triton, cuda-* (measured)", 0, cuda_extra),
        ("torchvision (measured, default-index build)", torchvision, torchvision),
        ("other serving dependencies (measured)", rest_bytes, rest_bytes),
        (f"weights: {', '.join(prefetch)} (published sizes)", weights, weights),
    ]
    print("| backend base layer | CPU torch | default (CUDA) torch |")
    print("| --- | ---: | ---: |")
    for label, cpu, cuda in rows:
        print(f"| {label} | {cpu / MB:,.0f} MB | {cuda / MB:,.0f} MB |")
    cpu_total, cuda_total = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| **backend image, unpacked** | **{cpu_total / MB:,.0f} MB** | "
          f"**{cuda_total / MB:,.0f} MB** |")  # fmt: skip
    print()
    print(f"frontend image: {(PYTHON_SLIM_MB * MB + frontend) / MB:,.0f} MB "
          f"(dependencies measured: {frontend / MB:,.0f} MB)")  # fmt: skip
    print(f"gateway image: {(PYTHON_SLIM_MB * MB + gateway) / MB:,.0f} MB "
          f"(dependencies measured: {gateway / MB:,.0f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
