"""The served model: the one seam between a backend's Flask app and the models it runs.

A backend's create_app makes one with create_served_model(settings) and then
uses only the ServedModel interface: which models a caller may ask for,
classify an image request with one of them, warm up, say why it is not ready.
As in LitServe's LitAPI/LitServer split, the app says what (read the request,
classify, encode the answer) and the served model decides how.

How, behind the seam, for every model and every backend alike (backend_v1,
backend_v2, each v3 model service): a model loads without first drawing random
weights when its file allows (fast_load.py), its BatchNorms are folded into
the convolutions (folding.py), its weights and inputs are channels-last and
its convolutions run on packed weights (packing.py); every forward pass goes
through the worker's one BatchScheduler (batching.py), which batches
concurrent requests for the same model and shares the cores between them. The
SERVING settings (classifier/settings.py) turn each of these off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image

from classifier.batching import BatchScheduler, default_engines
from classifier.fast_load import load_without_init
from classifier.images import decode_image
from classifier.inference import Prediction, Predictor, configure_threads
from classifier.intake import ImageRequest
from classifier.model_cache import ModelCache
from classifier.models import (
    CATALOG,
    LoadedModel,
    ModelSpec,
    WeightsSource,
    load_model,
    load_or_exit,
)
from classifier.settings import ServingSettings
from webservice import errors
from webservice.api import Readiness, configure_logging
from webservice.server import available_cores

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = "untrained random weights (MODEL_WEIGHTS=random): predictions are noise"


@dataclass(frozen=True)
class Classification:
    """One image's answer: the model that gave it, its top-k, and where the time went."""

    model: str
    predictions: list[Prediction]
    timing_ms: dict[str, float]
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The /predict response body (`category`, the top-1 label, is kept for clients
        written against the original kit)."""
        body: dict[str, Any] = {
            "model": self.model,
            "category": self.predictions[0].label,
            "predictions": [prediction.to_json() for prediction in self.predictions],
            "timing_ms": self.timing_ms,
        }
        if self.warning:
            body["warning"] = self.warning
        return body


class ServedModel(Readiness, Protocol):
    """What a backend's app may ask of the models it serves (warm_up and
    not_ready_reason come from Readiness: gunicorn's hooks and /ready use them)."""

    def describe(self) -> list[dict[str, Any]]:
        """/models: an entry per model a caller may ask for (name, available, default...)."""
        ...

    def check(self, name: str) -> None:
        """Raise UnknownModel (404) or ModelUnavailable (503) unless `name` can be served."""
        ...

    def load(self, name: str) -> None:
        """check(name), then load it now if it is not loaded: a file that does not fit
        fails here (503), not at the caller's next /predict."""
        ...

    def classify(self, image_request: ImageRequest, *, model: str) -> Classification:
        """Decode the request's image and classify it with `model`."""
        ...


def create_served_model(settings: ServingSettings) -> ServedModel:
    """The models `settings` offer, the default one loaded now (in gunicorn's master, so
    the forked workers share its weights); a default that cannot load stops the start."""
    configure_logging()  # before the first line it logs, which tells what is served
    return _ServedCatalog(settings)


class _ServedCatalog:
    """The offered catalog models: a bounded cache of loaded ones, one scheduler for all."""

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.source = settings.weights_source
        self.default_name = settings.model_name
        self.offered = settings.offered_models
        max_loaded = min(settings.max_loaded_models, len(self.offered))
        self.loaded: ModelCache[Predictor] = ModelCache(self._load_in_worker, max_loaded)
        fast = load_without_init(self.default_name, self.source)
        default = self._prepare(fast or load_or_exit(self.default_name, self.source))
        self.loaded.put(self.default_name, default)
        self.scheduler = BatchScheduler(
            cores=available_cores(),
            max_batch=settings.max_batch,
            gather_s=settings.batch_wait_ms / 1000,
            answered_users_wait_s=settings.answered_users_wait_ms / 1000,
            engines=settings.inference_engines
            or default_engines(default.loaded.spec.parameters, packed=default.packed),
        )
        self._warm = threading.Event()
        log.info(
            "serving %s (default %s; weights: %s; at most %d loaded per worker)",
            ", ".join(self.available_names()) or "no model",
            self.default_name,
            settings.model_weights,
            max_loaded,
        )

    def available_names(self) -> list[str]:
        return [name for name in self.offered if self.source.missing_reason(CATALOG[name]) is None]

    def describe(self) -> list[dict[str, Any]]:
        return [
            model_entry(CATALOG[name], self.source, default=name == self.default_name)
            for name in self.offered
        ]

    def check(self, name: str) -> None:
        if name not in self.offered:
            raise errors.UnknownModel.named(name, self.available_names())
        reason = self.source.missing_reason(CATALOG[name])
        if reason:
            raise errors.ModelUnavailable(reason, model=name, available=self.available_names())

    def load(self, name: str) -> None:
        self.check(name)
        self.loaded.get(name)

    def classify(self, image_request: ImageRequest, *, model: str) -> Classification:
        self.check(model)
        predictor = self.loaded.get(model)
        started = time.perf_counter()
        image = decode_image(image_request.data, max_pixels=self.settings.max_image_pixels)
        decoded = time.perf_counter()
        preprocess_ms: list[float] = []

        def preprocess() -> torch.Tensor:  # on this request's thread, beside the engines
            began = time.perf_counter()
            tensor = predictor.preprocess([image])[0]
            preprocess_ms.append((time.perf_counter() - began) * 1000)
            return tensor

        outcome = self.scheduler.run(predictor.forward, preprocess)
        top_k = image_request.top_k or self.settings.default_top_k
        predictions = predictor.top_k(outcome.row.unsqueeze(0), top_k)[0]
        timing = {
            "fetch_ms": round(image_request.fetch_ms, 2),
            "decode_ms": round((decoded - started) * 1000, 2),
            "preprocess_ms": round(preprocess_ms[0], 2),
            "queue_ms": round(outcome.queue_ms, 2),
            "inference_ms": round(outcome.forward_ms, 2),
            "total_ms": round((time.perf_counter() - started) * 1000 + image_request.fetch_ms, 2),
        }
        random = predictor.loaded.weights_origin.startswith("random")
        return Classification(
            predictor.name, predictions, timing, RANDOM_WEIGHTS_WARNING if random else None
        )

    def warm_up(self, cores: int | None = None) -> None:
        """Start the engines on `cores` cores (default: every core this process may use)
        and run the default model once on them, so the first caller pays for nothing."""
        self.scheduler.cores = cores or available_cores()
        configure_threads(self.scheduler.cores)
        self._run_once(self.loaded.get(self.default_name))
        self._warm.set()

    def not_ready_reason(self) -> str | None:
        return None if self._warm.is_set() else f"{self.default_name} is warming up"

    def _prepare(self, loaded: LoadedModel) -> Predictor:
        return Predictor(
            loaded,
            channels_last=self.settings.channels_last,
            fold_batch_norm=self.settings.fold_batch_norm,
            pack_convolutions=self.settings.pack_convolutions,
        )

    def _load_in_worker(self, name: str) -> Predictor:
        """A model asked for after the start: the caller waiting for it pays for the load
        and the warm-up, once per worker (the cache makes concurrent callers share it)."""
        predictor = self._prepare(
            load_without_init(name, self.source) or load_model(name, self.source)
        )
        self._run_once(predictor)
        return predictor

    def _run_once(self, predictor: Predictor) -> None:
        """One lone image through the scheduler: it starts the engines if they are not
        running, and engine 0 sets up (and packs for) the every-core path. Batched shapes
        on one thread are set up by their first use: warming them all would cost seconds."""
        started = time.perf_counter()
        grey = Image.new("RGB", (256, 256), (127, 127, 127))
        self.scheduler.run(predictor.forward, lambda: predictor.preprocess([grey])[0])
        log.info("%s warmed up in %.0f ms", predictor.name, (time.perf_counter() - started) * 1000)


def model_entry(spec: ModelSpec, source: WeightsSource, *, default: bool) -> dict[str, Any]:
    """How /models describes one catalog model on this service."""
    reason = source.missing_reason(spec)
    entry: dict[str, Any] = {
        "name": spec.name,
        "available": reason is None,
        "default": default,
        "description": spec.description,
        "parameters": spec.parameters,
        "weights": "random" if source.is_random else source.kind,
    }
    if reason:
        entry["reason"] = reason
    if source.is_random:
        entry["warning"] = RANDOM_WEIGHTS_WARNING
    return entry
