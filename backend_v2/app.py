"""backend_v2: serve every catalog model; each caller picks theirs.

A caller chooses a model per request (`model` in the /predict body or form) or
as their own default with `PUT /model/<name>`, kept in a server-side session
(flask-session; the cookie holds only the signed session id). The model a
request uses comes from that request, else its session, else the service
default (resolve_model_name), and is taken from a bounded, thread-safe cache of
loaded models (classifier.model_cache).

gunicorn preloads the app, so the service default (MODEL_NAME) is loaded once
in the master and shared with the forked workers; each worker warms it up
before it reports ready (gunicorn.conf.py). Other models load on first use,
once per worker.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask, session

from backend_v2.settings import BackendV2Settings
from classifier import errors
from classifier.inference import Predictor
from classifier.intake import ImageRequest, read_image_request
from classifier.model_cache import ModelCache
from classifier.models import CATALOG, ModelSpec, load_model, load_or_exit
from classifier.pipeline import model_entry, predict
from classifier.sessions import init_sessions
from classifier.web import configure_logging, health_blueprint, register_error_handlers

log = logging.getLogger(__name__)
# Same request limit as v1: the image limit plus room for the multipart framing.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
SESSION_MODEL_KEY = "model"


class ModelService:
    """The models this worker can serve, the cache of loaded ones, and its readiness."""

    def __init__(self, settings: BackendV2Settings) -> None:
        self.default_name = settings.model_name
        self.source = settings.weights_source
        self.cache: ModelCache[Predictor] = ModelCache(self._load, settings.max_loaded_models)
        self._warm = threading.Event()

    def preload_default(self) -> None:
        """Load the service default now (in gunicorn's master): a missing one stops the start."""
        self.cache.put(self.default_name, Predictor(load_or_exit(self.default_name, self.source)))

    def _load(self, name: str) -> Predictor:
        predictor = Predictor(load_model(name, self.source))
        predictor.warm_up()  # in a worker: the caller waiting for the load pays for it, once
        return predictor

    def warm_up(self) -> None:
        self.cache.get(self.default_name).warm_up()
        self._warm.set()

    def not_ready_reason(self) -> str | None:
        return None if self._warm.is_set() else f"{self.default_name} is warming up"

    def available_names(self) -> list[str]:
        return [name for name, spec in CATALOG.items() if self.source.missing_reason(spec) is None]

    def spec(self, name: str) -> ModelSpec:
        """The catalog entry of a model this service can load: 404 if unknown, 503 if missing."""
        spec = CATALOG.get(name)
        available = self.available_names()
        if spec is None:
            raise errors.UnknownModel(
                f"Unknown model {name!r}. Models available here: {', '.join(available)}.",
                available=available,
            )
        reason = self.source.missing_reason(spec)
        if reason:
            raise errors.ModelUnavailable(reason, model=name, available=available)
        return spec

    def predictor(self, name: str) -> Predictor:
        self.spec(name)
        return self.cache.get(name)


def session_choice() -> str | None:
    """The model this caller chose with PUT /model/<name>, if any."""
    choice = session.get(SESSION_MODEL_KEY)
    return choice if isinstance(choice, str) else None


def resolve_model_name(image_request: ImageRequest, default: str) -> str:
    """Per request first, then the caller's session, then the service default."""
    return image_request.model or session_choice() or default


def create_app(settings: BackendV2Settings | None = None) -> Flask:
    settings = settings or BackendV2Settings()
    configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    # Write a session back only when it changed. Flask's default rewrites every
    # permanent session on every request, so a slow /predict that read the old
    # choice would overwrite a PUT /model that finished while it ran.
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    app.json.sort_keys = False
    init_sessions(app, settings)
    service = ModelService(settings)
    service.preload_default()
    app.extensions["model_service"] = service
    register_error_handlers(app)
    app.register_blueprint(health_blueprint(service.not_ready_reason))

    def choice_body(name: str, selected_by: str) -> dict:
        return {"model": name, "selected_by": selected_by, "default": service.default_name}

    @app.get("/models")
    def models():
        selected = session_choice() or service.default_name
        entries = []
        for name, spec in CATALOG.items():
            entry = model_entry(spec, service.source, default=name == service.default_name)
            entry["selected"] = name == selected  # what this caller's /predict uses
            entries.append(entry)
        return {"models": entries, "default": service.default_name, "selected": selected}

    @app.get("/model")
    def get_model():
        choice = session_choice()
        if choice:
            return choice_body(choice, "session")
        return choice_body(service.default_name, "service_default")

    @app.put("/model/<name>")
    def put_model(name: str):
        # Load before saving the choice: an unknown (404) or unloadable (503)
        # model raises here and the caller's session stays as it was.
        service.predictor(name)
        session[SESSION_MODEL_KEY] = name
        return choice_body(name, "session")

    @app.delete("/model")
    def delete_model():
        session.pop(SESSION_MODEL_KEY, None)
        return choice_body(service.default_name, "service_default")

    @app.post("/predict")
    def predict_route():
        image_request = read_image_request(settings.fetch_limits, check_model=service.spec)
        name = resolve_model_name(image_request, service.default_name)
        return predict(
            service.predictor(name),
            image_request,
            top_k=image_request.top_k or settings.default_top_k,
            max_pixels=settings.max_image_pixels,
        )

    log.info(
        "backend_v2 serves %s (default %s, weights: %s, at most %d loaded per worker, "
        "sessions in %s)",
        ", ".join(service.available_names()) or "no model",
        settings.model_name,
        settings.model_weights,
        settings.max_loaded_models,
        settings.session_store,
    )
    return app
