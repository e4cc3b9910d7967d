"""Stand-ins for what a real image build reaches and this machine cannot.

A real build pulls python:3.11-slim-bookworm from Docker Hub, installs the
torch pair from the PyTorch CPU index and downloads torchvision's published
weights. Where those are out of reach (this project's CI), each has a
stand-in, passed only as a build argument whose default is the real thing,
and printed; the Dockerfiles students build are never edited:

  PYTHON_IMAGE         Debian bookworm's own Python 3.11 with pip and venv
                       (debootstrap, minbase), EXTERNALLY-MANAGED removed so
                       pip installs system-wide as it does in the python image
  TORCH_INDEX_URL=""   the same torch and torchvision versions from the
  TORCH_LOCAL_VERSION="" default index: the CUDA build, about 4 GB larger,
                       the same code on a CPU
  PREFETCH_MODELS      efficientnet_lite0 only, whose real weights ship in its
                       package (the published ones cannot be downloaded)

Only a Dockerfile that declares the argument gets it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tools.images.engine import Engine, EngineError

REAL_PYTHON_IMAGE = "python:3.11-slim-bookworm"
PYTHON_STAND_IN = "localhost/stand-in/python:3.11-slim-bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates")
# Left out of the stand-in as the slim image leaves them out: package caches, docs, locales.
TRIMMED = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/locale")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True)
class StandIn:
    build_arg: str
    value: str
    replaces: str
    why: str


def stand_ins(python_image: str) -> tuple[StandIn, ...]:
    return (
        StandIn(
            "PYTHON_IMAGE",
            python_image,
            REAL_PYTHON_IMAGE,
            "Docker Hub cannot be reached; Debian bookworm's Python 3.11 (debootstrap)",
        ),
        StandIn(
            "TORCH_INDEX_URL",
            "",
            "the PyTorch CPU index",
            "it cannot be reached; the same versions from the default index",
        ),
        StandIn(
            "TORCH_LOCAL_VERSION",
            "",
            "+cpu",
            "the default index's build of the same versions (CUDA, about 4 GB larger)",
        ),
        StandIn(
            "PREFETCH_MODELS",
            "efficientnet_lite0",
            "the published weights of four models",
            "they cannot be downloaded; this model's real weights ship in its package",
        ),
    )


def declared_args(dockerfile: Path) -> set[str]:
    return set(_ARG.findall(dockerfile.read_text()))


def build_args_for(dockerfile: Path, chosen: tuple[StandIn, ...], given: dict[str, str]):
    """The stand-ins this Dockerfile declares and the build does not set itself."""
    declared = declared_args(dockerfile)
    return [s for s in chosen if s.build_arg in declared and s.build_arg not in given]


def describe(stand_in: StandIn) -> str:
    shown = stand_in.value if stand_in.value else '""'
    return f"stand-in: {stand_in.build_arg}={shown} instead of {stand_in.replaces} ({stand_in.why})"


def python_stand_in_tarball(cache: Path) -> Path:
    """Debian bookworm minbase with Python 3.11, as a root file system tarball (made once)."""
    tarball = cache / "python-3.11-slim-bookworm.tar"
    if tarball.is_file():
        return tarball
    if os.geteuid() != 0:
        raise EngineError(
            "The Python stand-in is made with debootstrap, which needs root: run as root, "
            f"or build on a machine that can pull {REAL_PYTHON_IMAGE} (without stand-ins)."
        )
    if shutil.which("debootstrap") is None:
        raise EngineError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    rootfs = cache / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    for trimmed in TRIMMED:
        shutil.rmtree(rootfs / trimmed, ignore_errors=True)
        (rootfs / trimmed).mkdir(parents=True, exist_ok=True)
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    if HOST_CA_BUNDLE.is_file():
        # Trust what the host trusts: where a proxy re-signs TLS to the package index,
        # pip in the build must accept its certificates as the host's tools do.
        shutil.copyfile(HOST_CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    partial = tarball.with_suffix(".partial")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
    partial.rename(tarball)
    shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def import_python_stand_in(engine: Engine, cache: Path) -> str:
    """The stand-in image in the engine's store, configured as the python image is."""
    if engine.exists(PYTHON_STAND_IN):
        return PYTHON_STAND_IN
    tarball = python_stand_in_tarball(cache)
    engine.image(
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        'CMD ["python3"]',
        str(tarball),
        PYTHON_STAND_IN,
    )
    return PYTHON_STAND_IN
