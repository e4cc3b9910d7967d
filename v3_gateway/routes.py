"""Which model service serves which model: `MODEL_SERVICES` or a YAML file.

    MODEL_SERVICES="efficientnet_lite0=http://127.0.0.1:8091,resnet18=http://127.0.0.1:8092"

or MODEL_SERVICES_FILE naming a YAML file holding either a mapping

    efficientnet_lite0: https://model-efficientnet-lite0-abc123-nn.a.run.app
    resnet18: https://model-resnet18-abc123-nn.a.run.app

or a list of `{name, url}` items. The first model listed is the default
unless DEFAULT_MODEL says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class RouteConfigError(ValueError):
    """The routing configuration cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class ModelRoute:
    name: str
    url: str  # base URL of the model service, no trailing slash


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """`name=url,name=url` (spaces and newlines around items are ignored)."""
    pairs = []
    for item in re.split(r"[,\s]+", text.strip()):
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep:
            raise RouteConfigError(
                f"MODEL_SERVICES item {item!r} is not name=url "
                "(example: resnet18=https://model-resnet18-abc-nn.a.run.app)."
            )
        pairs.append((name.strip(), url.strip()))
    return pairs


def load_yaml(path: Path) -> list[tuple[str, str]]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RouteConfigError(f"cannot read MODEL_SERVICES_FILE {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise RouteConfigError(f"MODEL_SERVICES_FILE {path} is not valid YAML: {exc}") from None
    if isinstance(document, dict):
        return [(str(name), str(url)) for name, url in document.items()]
    if isinstance(document, list) and all(
        isinstance(item, dict) and {"name", "url"} <= item.keys() for item in document
    ):
        return [(str(item["name"]), str(item["url"])) for item in document]
    raise RouteConfigError(
        f"MODEL_SERVICES_FILE {path} must hold a mapping `name: url` "
        "or a list of items with `name` and `url`."
    )


def build_routes(pairs: list[tuple[str, str]]) -> dict[str, ModelRoute]:
    """Check every pair and keep the order (the first is the default model)."""
    if not pairs:
        raise RouteConfigError(
            "no model services configured: set MODEL_SERVICES=name=url,name=url "
            "or MODEL_SERVICES_FILE=<yaml file>."
        )
    routes: dict[str, ModelRoute] = {}
    for name, url in pairs:
        if not NAME_PATTERN.match(name):
            raise RouteConfigError(
                f"model name {name!r} must be lower-case letters, digits, '_', '.' or '-'."
            )
        if name in routes:
            raise RouteConfigError(f"model {name!r} is listed twice in the routing configuration.")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RouteConfigError(
                f"the URL of model {name!r} must be http(s)://host[:port], not {url!r}."
            )
        if parts.query or parts.fragment:
            raise RouteConfigError(f"the URL of model {name!r} must not carry ?query or #fragment.")
        routes[name] = ModelRoute(name, url.rstrip("/"))
    return routes
