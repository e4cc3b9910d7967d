"""Download the published weights of catalog models into TORCH_HOME.

The backend base image runs this at build time:
    python -m classifier.prefetch resnet50 resnet18
`--all` fetches every catalog model; no names fetch nothing, so an empty
PREFETCH_MODELS bakes no weights. Packaged weights need nothing.
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
    parser.add_argument("models", nargs="*", help=f"catalog names, of {list(CATALOG)}")
    parser.add_argument("--all", action="store_true", help="every catalog model")
    args = parser.parse_args(argv)
    if args.all and args.models:
        parser.error("name models or give --all, not both")
    names = list(CATALOG) if args.all else args.models
    if not names:
        # An empty list means none: a build given PREFETCH_MODELS="" bakes no weights.
        print("no model named: nothing to fetch (name catalog models, or give --all)")
    for path in prefetch(names):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
