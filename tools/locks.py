"""`make locks`: every component's full dependency set, pinned by uv into requirements/locks/.

    python -m tools.locks

requirements/*.txt pin what each component imports; a lock pins everything
those pins pull in as well, so two images built an hour apart, and the dev
environment, get the same version of every package. Each image installs one
lock (the backends serving.txt, the frontends frontend.txt, the gateway
gateway.txt) and `make setup` installs dev.txt.

The locks leave out the torch pair: it is pinned by version in
requirements/torch.txt and in the backend base's build arguments, and comes
from the PyTorch CPU index in the images but from the default index here. They
also leave out the CUDA packages that only the default index's torch pulls in
(torch pins those itself). Every component lock is compiled under the dev
lock's constraints, so a package two components share has one version in all.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements"
LOCK_DIR = REQUIREMENTS / "locks"
# lock name -> the requirements/ files it is compiled from. dev comes first: the
# others are constrained by it.
LOCKS = {
    "dev": ("dev.txt",),
    "serving": ("torch.txt", "serving.txt"),
    "gateway": ("gateway.txt",),
    "frontend": ("frontend.txt",),
}
TORCH_PAIR = ("torch", "torchvision")
PYTHON_VERSION = "3.11"
_CUDA_ONLY = re.compile(r"(nvidia|cuda)-.*|triton")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==")


def is_cuda_only(name: str) -> bool:
    """A package only the default index's (CUDA) torch installs."""
    return bool(_CUDA_ONLY.fullmatch(name.lower()))


def uv_command() -> list[str]:
    # The Makefile passes its own uv command (python3 -m uv); alone, this Python's uv.
    return shlex.split(os.environ.get("UV", "")) or [sys.executable, "-m", "uv"]


def _compile(sources: tuple[str, ...], *options: str) -> subprocess.CompletedProcess:
    command = [
        *uv_command(),
        "pip",
        "compile",
        "--quiet",
        "--universal",
        "--python-version",
        PYTHON_VERSION,
        *(f"requirements/{source}" for source in sources),
        *options,
    ]
    return subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, text=True)


def left_out() -> list[str]:
    """The torch pair and every CUDA-only package the full dev set resolves to."""
    resolved = _compile(LOCKS["dev"], "--no-header", "--no-annotate").stdout
    names = {match.group(1).lower() for match in map(_PIN.match, resolved.splitlines()) if match}
    return sorted({*TORCH_PAIR, *(name for name in names if is_cuda_only(name))})


def write_locks() -> list[Path]:
    LOCK_DIR.mkdir(exist_ok=True)
    excluded = [option for name in left_out() for option in ("--no-emit-package", name)]
    written = []
    for lock, sources in LOCKS.items():
        target = LOCK_DIR / f"{lock}.txt"
        constraints = [] if lock == "dev" else ["--constraint", "requirements/locks/dev.txt"]
        _compile(
            sources,
            *constraints,
            *excluded,
            "--custom-compile-command",
            "make locks",
            "--output-file",
            str(target.relative_to(REPO_ROOT)),
        )
        written.append(target)
    return written


def main() -> int:
    try:
        written = write_locks()
    except subprocess.CalledProcessError as failed:
        print(f"uv pip compile failed:\n{failed.stderr}", file=sys.stderr)
        return 1
    for path in written:
        pins = sum(1 for line in path.read_text().splitlines() if _PIN.match(line))
        print(f"{path.relative_to(REPO_ROOT)}: {pins} pinned packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
