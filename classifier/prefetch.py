"""Download the published weights of catalog models into TORCH_HOME.

The backend base image runs this at build time:
    python -m classifier.prefetch resnet50 resnet18
With no names it fetches every catalog model. Packaged weights need nothing.
"""

from __future__ import annotations

import argparse
import sys

from classifier.models import CATALOG, get_spec


def prefetch(names: list[str]) -> list[str]:
    """Fetch what is missing; return the paths of the weights now on disk."""
    import torchvision

    paths = []
    for name in names:
        spec = get_spec(name)
        path = spec.default_weights_path()
        if spec.torchvision_weights and not path.is_file():
            torchvision.models.get_weight(spec.torchvision_weights).get_state_dict(
                progress=False, check_hash=True
            )
        paths.append(str(path))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="*", help=f"catalog names (default: all of {list(CATALOG)})"
    )
    args = parser.parse_args(argv)
    for path in prefetch(args.models or list(CATALOG)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
