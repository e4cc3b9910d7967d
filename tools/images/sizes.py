"""`make image-sizes`: measure the built images and write the figures into a Markdown file.

Everything is read from the images `make images` built: each image's unpacked
size and its layers (`history`), and, inside the backend base, the installed
bytes of every distribution (the files its RECORD lists, byte-compiled files
included, as pip leaves them). Where the images were built with stand-ins
(the default index's CUDA torch, a debootstrap Python), the CPU-torch backend
is derived from the same measurements: the default-index torch and the
CUDA-only packages are taken out of the measured layer, and the CPU wheel's
installed size, measured by installing it with the image's own pip, is put in.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tools.images import build, plan, standins
from tools.images.engine import DaemonlessEngine, Engine, EngineError

BEGIN = "<!-- measured sizes: begin (written by `make image-sizes`; do not edit by hand) -->"
END = "<!-- measured sizes: end -->"
MB = 1e6
CPU_WHEEL_GLOB = "/opt/wheels/torch-*+cpu-cp311-*.whl"

# Run inside the backend base: the installed bytes of every distribution, by name.
_DISTRIBUTION_BYTES = """
import json, os
from importlib import metadata
sizes = {}
for dist in metadata.distributions():
    total = 0
    for file in dist.files or []:
        path = str(file.locate())
        if os.path.isfile(path):
            total += os.path.getsize(path)
    sizes[dist.metadata["Name"].lower()] = [dist.version, total]
print(json.dumps(sizes))
"""
# Run inside the backend base with the CPU wheel mounted at /wheel: pip installs it
# (byte-compiling, as the image's pip does) into a scratch folder, which is measured.
_CPU_WHEEL_BYTES = """
import os, subprocess, sys
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                "--target", "/tmp/cpu-torch", "/wheel/" + sys.argv[1]], check=True)
print(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk("/tmp/cpu-torch")
          for f in fs))
"""


@dataclass
class ImageSizes:
    name: str
    size: int
    base_size: int | None
    layers: list


def _in_container(engine: Engine, image: str, code: str, *args: str, mounts=()) -> str:
    volume_flags = [flag for host, inside in mounts for flag in ("-v", f"{host}:{inside}:ro")]
    command = ["run", "--rm", "--network", "none", *volume_flags, image, "python", "-c", code]
    return engine.image(*command, *args, timeout=600).stdout.strip()


def instruction(created_by: str) -> str:
    """A history entry as the Dockerfile instruction it came from, shortened for a table."""
    text = re.sub(r"^\|\d+ .*?/bin/sh -c ", "RUN ", created_by)  # a RUN, with its ARG values
    text = re.sub(r"^/bin/sh -c #\(nop\) ", "", text)
    text = re.sub(r"^/bin/sh -c ", "RUN ", text)
    text = re.sub(r"^(ADD|COPY) (file|multi|dir):[0-9a-f]+ in ", r"\1 ... to ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 60 else text[:57] + "..."


def measure(engine: Engine) -> list[ImageSizes]:
    measured = []
    sizes = {}
    for spec in plan.PLAN:
        if not engine.exists(spec.reference):
            raise EngineError(f"{spec.reference} is not built: run `make images` first")
        sizes[spec.name] = engine.size(spec.reference)
        layers = [(layer.created_by, layer.size) for layer in engine.layers(spec.reference)]
        base_size = sizes[spec.base] if spec.base else None
        measured.append(ImageSizes(spec.name, sizes[spec.name], base_size, layers))
    return measured


def torch_breakdown(engine: Engine) -> dict:
    """Installed bytes in the backend base: torch, torchvision, CUDA-only, the rest."""
    from tools.locks import TORCH_PAIR, is_cuda_only

    image = plan.BY_NAME["backend-base"].reference
    sizes = json.loads(_in_container(engine, image, _DISTRIBUTION_BYTES))
    groups = {"torch": 0, "torchvision": 0, "cuda": 0, "rest": 0}
    versions = {}
    for name, (version, size) in sizes.items():
        key = name if name in TORCH_PAIR else "cuda" if is_cuda_only(name) else "rest"
        groups[key] += size
        versions[name] = version
    groups["torch_version"] = versions.get("torch", "?")
    groups["torchvision_version"] = versions.get("torchvision", "?")
    return groups


def cpu_torch_bytes(engine: Engine, wheel: Path | None) -> int | None:
    if wheel is None or not wheel.is_file():
        return None
    image = plan.BY_NAME["backend-base"].reference
    flags = ["--user", "0"] if isinstance(engine, DaemonlessEngine) else []
    command = ["run", "--rm", "--network", "none", *flags, "-v", f"{wheel.parent}:/wheel:ro"]
    result = engine.image(
        *command, image, "python", "-c", _CPU_WHEEL_BYTES, wheel.name, timeout=900
    )
    return int(result.stdout.strip().splitlines()[-1])


def find_cpu_wheel() -> Path | None:
    chosen = os.environ.get("CPU_TORCH_WHEEL")
    if chosen:
        return Path(chosen)
    found = sorted(glob.glob(CPU_WHEEL_GLOB))
    return Path(found[-1]) if found else None


def _mb(value: float) -> str:
    return f"{value / MB:,.0f} MB" if value >= MB else f"{value / 1e3:,.0f} kB"


def published_weights_bytes() -> tuple[list[str], int]:
    """The models the real backend base bakes in, and their weights' published sizes."""
    from torchvision.models import get_weight

    from classifier.models import CATALOG

    dockerfile = (build.REPO_ROOT / plan.BACKEND_BASE).read_text()
    default = re.search(r'^ARG PREFETCH_MODELS="([^"]*)"', dockerfile, re.MULTILINE)
    models = default.group(1).split() if default else []
    mib = sum(get_weight(CATALOG[m].torchvision_weights).meta["_file_size"] for m in models)
    return models, int(mib * 1024 * 1024)


def render(measured: list[ImageSizes], breakdown: dict, cpu_torch: int | None, engine: Engine):
    report = build.images_dir() / "report.json"
    used = (
        {s for b in json.loads(report.read_text()) for s in b["stand_ins"]}
        if report.exists()
        else set()
    )
    today = datetime.date.today().isoformat()
    lines = [
        BEGIN,
        "",
        f"Measured {today} with {engine.name} on the images `make images` built"
        + (f", with the stand-ins {', '.join(sorted(used))}." if used else "."),
        "",
        "| image | unpacked | added to its base |",
        "| --- | ---: | ---: |",
    ]
    for image in measured:
        added = "" if image.base_size is None else _mb(image.size - image.base_size)
        lines.append(f"| `{image.name}` | {_mb(image.size)} | {added} |")
    backend = next(i for i in measured if i.name == "backend-base")
    lines += ["", "The backend base, layer by layer:", "", "| instruction | unpacked |"]
    lines.append("| --- | ---: |")
    for created_by, size in backend.layers:
        if size:
            lines.append(f"| `{instruction(created_by)}` | {_mb(size)} |")
    pip_layer = max(size for _, size in backend.layers)
    torch_v, vision_v = breakdown["torch_version"], breakdown["torchvision_version"]
    lines += [
        "",
        "Inside its dependency layer (installed files, byte-compiled ones included):",
        "",
        "| distributions | installed |",
        "| --- | ---: |",
        f"| torch {torch_v} | {_mb(breakdown['torch'])} |",
        f"| torchvision {vision_v} | {_mb(breakdown['torchvision'])} |",
        f"| CUDA-only (nvidia-\\*, cuda-\\*, triton) | {_mb(breakdown['cuda'])} |",
        f"| everything else the serving lock installs | {_mb(breakdown['rest'])} |",
    ]
    python_layer = backend.layers[0][1]
    if cpu_torch is not None and breakdown["cuda"]:
        cpu_layer = pip_layer - breakdown["torch"] - breakdown["cuda"] + cpu_torch
        models, weights = published_weights_bytes()
        lines += [
            "",
            "**The CPU-torch backend base that Cloud Build builds**, derived from these "
            "measurements: the default index's torch and the CUDA-only packages out of the "
            f"dependency layer, torch {torch_v}+cpu in (its CPU wheel installed by the "
            "image's own pip, byte-compiled, and measured), and the published weights the "
            "real build bakes in. torchvision's CPU build is counted as the default index's "
            "(an upper bound).",
            "",
            "| part | unpacked |",
            "| --- | ---: |",
            f"| Python layer (as built here) | {_mb(python_layer)} |",
            f"| dependency layer: {_mb(pip_layer)} measured, less torch {_mb(breakdown['torch'])}"
            f" and CUDA-only {_mb(breakdown['cuda'])}, plus torch+cpu {_mb(cpu_torch)} "
            f"| {_mb(cpu_layer)} |",
            f"| weights of {', '.join(models)} (published sizes) | {_mb(weights)} |",
            f"| **CPU-torch backend base** | **{_mb(python_layer + cpu_layer + weights)}** |",
        ]
    elif breakdown["cuda"]:
        lines += ["", "No CPU torch wheel was found (CPU_TORCH_WHEEL): no CPU figure derived."]
    if "PYTHON_IMAGE" in used:
        lines += [
            "",
            f"The first layer is the stand-in for `{standins.REAL_PYTHON_IMAGE}` "
            f"({_mb(python_layer)}): Debian's own Python 3.11 with pip and venv; the slim "
            "image's own size cannot be measured here.",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_section(document: Path, section: str) -> None:
    text = document.read_text()
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    document.write_text(text)


def main(write: str | None) -> None:
    engine = build.engine_for()
    measured = measure(engine)
    breakdown = torch_breakdown(engine)
    cpu_torch = cpu_torch_bytes(engine, find_cpu_wheel()) if breakdown["cuda"] else None
    section = render(measured, breakdown, cpu_torch, engine)
    print(section)
    if write:
        write_section(Path(write), section)
        print(f"\nwrote the measured sizes into {write}")
