"""backend_v1: serve one catalog model over the public HTTP API.

gunicorn preloads this app in its master, so the weights are loaded once and
shared by the forked workers; each worker then sets its thread budget, warms
the model up and starts its inference scheduler (gunicorn.conf.py) before it
reports ready. The scheduler (classifier/batching.py) batches concurrent
requests and gives a lone one every core.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from backend_v1.settings import BackendV1Settings
from classifier import errors
from classifier.batching import BatchedPredictor, BatchScheduler, default_engines
from classifier.fast_load import load_without_init
from classifier.inference import Predictor
from classifier.intake import read_image_request
from classifier.models import get_spec, load_or_exit
from classifier.pipeline import model_entry, predict
from classifier.server_config import available_cores
from classifier.web import configure_logging, health_blueprint, register_error_handlers

log = logging.getLogger(__name__)
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class ModelHolder:
    """The one model this process serves, its scheduler, and whether it is warm here."""

    def __init__(self, predictor: Predictor, settings: BackendV1Settings) -> None:
        self.predictor = BatchedPredictor(
            predictor,
            BatchScheduler(
                predictor.forward,
                cores=available_cores(),
                max_batch=settings.max_batch,
                gather_s=settings.batch_wait_ms / 1000,
                linger_s=settings.batch_linger_ms / 1000,
                engines=settings.inference_engines
                or default_engines(predictor.loaded.spec.parameters, packed=predictor.packed),
            ),
        )
        self._warm = threading.Event()

    def warm_up(self, cores: int | None = None) -> None:
        """Warm up and start the engines, on `cores` cores (default: all this process may use)."""
        if cores:
            self.predictor.scheduler.cores = cores
        self.predictor.warm_up()
        self._warm.set()

    def not_ready_reason(self) -> str | None:
        return None if self._warm.is_set() else f"{self.predictor.name} is warming up"


def create_app(settings: BackendV1Settings | None = None) -> Flask:
    settings = settings or BackendV1Settings()
    configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    app.json.sort_keys = False
    loaded = load_without_init(settings.model_name, settings.weights_source) or load_or_exit(
        settings.model_name, settings.weights_source
    )
    predictor = Predictor(
        loaded,
        channels_last=settings.channels_last,
        fold_batch_norm=settings.fold_batch_norm,
        pack_convolutions=settings.pack_convolutions,
    )
    holder = ModelHolder(predictor, settings)
    app.extensions["model_holder"] = holder
    register_error_handlers(app)
    app.register_blueprint(health_blueprint(holder.not_ready_reason))

    @app.get("/models")
    def models():
        spec = get_spec(settings.model_name)
        return {"models": [model_entry(spec, settings.weights_source, default=True)]}

    @app.post("/predict")
    def predict_route():
        image_request = read_image_request(settings.fetch_limits)
        if image_request.model not in (None, settings.model_name):
            raise errors.UnknownModel(
                f"This service serves only {settings.model_name!r}, not {image_request.model!r}.",
                available=[settings.model_name],
            )
        return predict(
            holder.predictor,
            image_request,
            top_k=image_request.top_k or settings.default_top_k,
            max_pixels=settings.max_image_pixels,
        )

    log.info("backend_v1 serves %s (weights: %s)", settings.model_name, settings.model_weights)
    return app
