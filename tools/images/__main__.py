"""Build, measure and remove the assignment's images with the local engine.

    python -m tools.images build [NAME ...] [--stand-ins]   (make images)
    python -m tools.images sizes [--write FILE.md]          (make image-sizes)
    python -m tools.images env                              podman/buildah settings of the store
    python -m tools.images clean [--keep-stand-ins]         (make images-clean; also
                                                            empties cloudbuild-local's folder)

IMAGES_DIR chooses where buildah and podman keep everything (default
build/images); Docker, where an engine answers, keeps images in its own store.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys

from tools.images import build, plan, sizes
from tools.images.engine import DaemonlessEngine, EngineError, detect, unmount_below


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    build_verb = verbs.add_parser("build", help="build the images (bases first)")
    build_verb.add_argument("names", nargs="*", help=f"of {', '.join(plan.BY_NAME)}")
    build_verb.add_argument(
        "--stand-ins",
        action="store_true",
        help="substitute what this machine cannot reach (base image, CPU index, weights)",
    )
    sizes_verb = verbs.add_parser("sizes", help="measure the built images")
    sizes_verb.add_argument("--write", metavar="FILE", help="replace the sizes section of FILE")
    verbs.add_parser("env", help="print the settings that point podman at the image store")
    clean_verb = verbs.add_parser("clean", help="remove the image store")
    clean_verb.add_argument("--keep-stand-ins", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.verb == "build":
            build.build_images(args.names, use_stand_ins=args.stand_ins)
        elif args.verb == "sizes":
            sizes.main(args.write)
        elif args.verb == "env":
            engine = build.engine_for()
            for name in (
                "CONTAINERS_STORAGE_CONF",
                "CONTAINERS_CONF",
                "CONTAINERS_REGISTRIES_CONF",
            ):
                if name in engine.env:
                    print(f"export {name}={shlex.quote(engine.env[name])}")
        else:
            clean(keep_stand_ins=args.keep_stand_ins)
    except (EngineError, ValueError) as failed:
        print(f"{parser.prog} {args.verb}: {failed}", file=sys.stderr)
        return 1
    return 0


def clean(keep_stand_ins: bool = False) -> None:
    """Remove the image store, cloudbuild-local's registry and runs, and the stand-ins."""
    folder = build.images_dir()
    engine = detect(folder / "engine") if (folder / "engine").is_dir() else None
    if isinstance(engine, DaemonlessEngine):
        engine.clean()
    elif engine is not None:  # Docker's store is shared: remove only our images
        for spec in plan.PLAN:
            engine.image("rmi", spec.reference, check=False)
    removed = [folder, build.cloudbuild_local_dir()]
    if not keep_stand_ins:
        removed.append(build.stand_ins_dir())
    for path in removed:
        unmount_below(path)  # what a failed build or run may have left mounted
        shutil.rmtree(path, ignore_errors=True)
    print("removed " + ", ".join(str(path) for path in removed))


if __name__ == "__main__":
    sys.exit(main())
