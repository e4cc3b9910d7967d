"""`make images`: build every image of the plan with the local engine, and say how it went."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.images import plan, standins
from tools.images.engine import Engine, EngineError, detect, require_free_disk

REPO_ROOT = Path(__file__).resolve().parents[2]
# Peak disk, measured: the default-index (CUDA) torch is downloaded, installed and
# committed as a layer once each; the CPU build is about a quarter of that.
DISK_NEEDED = {"cuda torch": 25e9, "cpu torch": 8e9, "torch-free": 3e9}


def images_dir() -> Path:
    return Path(os.environ.get("IMAGES_DIR") or REPO_ROOT / "build" / "images").resolve()


def stand_ins_dir() -> Path:
    return images_dir().parent / "stand-ins"


def cloudbuild_local_dir() -> Path:
    return images_dir().parent / "cloudbuild-local"


def engine_for(folder: Path | None = None) -> Engine:
    return detect((folder or images_dir()) / "engine")


@dataclass
class Built:
    name: str
    reference: str
    seconds: float
    size: int
    stand_ins: list[str]


def disk_needed(specs: list[plan.ImageSpec], use_stand_ins: bool) -> float:
    if not any(spec.dockerfile == plan.BACKEND_BASE for spec in specs):
        return DISK_NEEDED["torch-free"]
    return DISK_NEEDED["cuda torch" if use_stand_ins else "cpu torch"]


def build_images(names: list[str] | None = None, *, use_stand_ins: bool = False) -> list[Built]:
    folder = images_dir()
    specs = plan.selected(names)
    require_free_disk(folder, int(disk_needed(specs, use_stand_ins)), "make images")
    engine = engine_for(folder)
    print(f"make images: {len(specs)} images with {engine.name}, storage in {folder}")
    chosen: tuple[standins.StandIn, ...] = ()
    if use_stand_ins:
        chosen = standins.stand_ins(standins.import_python_stand_in(engine, stand_ins_dir()))
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    built = []
    for spec in specs:
        args = plan.build_args(spec)
        substituted = standins.build_args_for(REPO_ROOT / spec.dockerfile, chosen, args)
        for stand_in in substituted:
            print(f"  {spec.name}: {standins.describe(stand_in)}")
            args[stand_in.build_arg] = stand_in.value
        log_path = logs / f"{spec.name}.log"
        print(f"  {spec.name}: building {spec.dockerfile} (log: {log_path})", flush=True)
        started = time.monotonic()
        with log_path.open("w") as log:
            status = engine.build(
                spec.dockerfile, str(REPO_ROOT), [spec.reference], args, output=log
            )
        seconds = time.monotonic() - started
        if status != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
            raise EngineError(f"{spec.name} failed to build ({status}); the log ends:\n{tail}")
        size = engine.size(spec.reference)
        built.append(
            Built(spec.name, spec.reference, seconds, size, [s.build_arg for s in substituted])
        )
        print(f"  {spec.name}: {seconds:.1f} s, {size / 1e6:,.0f} MB", flush=True)
    (folder / "report.json").write_text(json.dumps([asdict(b) for b in built], indent=2))
    print(summary(built, engine))
    return built


def summary(built: list[Built], engine: Engine) -> str:
    lines = ["", f"{'image':<16}{'build s':>9}{'size MB':>10}  reference"]
    for b in built:
        lines.append(f"{b.name:<16}{b.seconds:>9.1f}{b.size / 1e6:>10,.0f}  {b.reference}")
    lines.append(f"total {sum(b.seconds for b in built):.1f} s with {engine.name}")
    lines.append("v3's model services run backend-v1 with MODEL_NAME set: no image of their own.")
    return "\n".join(lines)
