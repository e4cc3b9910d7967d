"""v3 gateway: backend_v2's public API in front of one model service per model.

Each model runs as its own service (backend_v1 with MODEL_NAME set). The
gateway routes by model name, keeps each caller's chosen model in a
server-side session as v2 does, and never imports torch: it passes request
bodies through without decoding them.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, request, session
from pydantic import ValidationError

from v3_gateway.availability import Availability, DefaultModelReadiness
from v3_gateway.incoming import Incoming, read_incoming
from v3_gateway.settings import GatewayServerSettings, GatewaySettings
from v3_gateway.transport import HandlePerThread
from v3_gateway.upstream import Deadline, ModelClient, Reply
from webservice import errors
from webservice.api import init_api
from webservice.connection import client_gone
from webservice.model_choice import (
    CHOICE_KEY,
    model_choice_blueprint,
    selected_by,
    session_choice,
)
from webservice.sessions import SessionSettings, init_sessions

log = logging.getLogger(__name__)
# Why the model that answered a /predict was used: "request", "session",
# "service_default" or "session_store_unavailable" (webservice/model_choice.py).
SELECTED_BY_HEADER = "X-Model-Selected-By"


def load_settings() -> GatewaySettings:
    try:
        return GatewaySettings()
    except ValidationError as exc:
        problems = "; ".join(
            str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()
        )
        raise SystemExit(f"cannot start the v3 gateway: {problems}") from None


def create_app(
    settings: GatewaySettings | None = None, session_settings: SessionSettings | None = None
) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__)

    threads = GatewayServerSettings().gunicorn_threads
    handles = HandlePerThread()
    clients = {
        name: ModelClient(route, settings, handles) for name, route in settings.routes.items()
    }
    availability = Availability(clients, settings.probe_cache_seconds)
    init_api(app, settings, readiness=DefaultModelReadiness(availability, settings.default))
    init_sessions(app, session_settings or SessionSettings())
    app.extensions["v3_gateway"] = {"clients": clients, "availability": availability}
    if len(clients) > 1 and settings.max_in_flight_per_model >= threads:
        log.warning(
            "MAX_IN_FLIGHT_PER_MODEL=%d is not below GUNICORN_THREADS=%d: "
            "one slow model can occupy every thread",
            settings.max_in_flight_per_model,
            threads,
        )

    def client_for(name: str) -> ModelClient:
        client = clients.get(name)
        if client is None:
            raise errors.UnknownModel.named(name, clients)
        return client

    def session_model() -> str:
        """The caller's PUT /model choice if it is still a routed model, else the default."""
        return session_choice(offered=clients) or settings.default

    def choose(name: str) -> None:
        """PUT /model/<name>, as in backend_v2: check the model, then keep the choice."""
        client_for(name)
        status = availability.status(name)
        if not status.available:
            raise errors.ModelUnavailable(
                f"Model {name!r} is unavailable ({status.reason}); your choice is unchanged.",
                model=name,
                available=[other.name for other in availability.all_statuses() if other.available],
            )
        session[CHOICE_KEY] = name

    app.register_blueprint(
        model_choice_blueprint(default=settings.default, choose=choose, offered=clients)
    )

    def forward(name: str, incoming: Incoming, selected_by: str) -> Response:
        client = client_for(name)
        environ = request.environ
        reply = client.predict(
            incoming.for_model(name).body,
            incoming.content_type,
            Deadline(settings.predict_deadline),
            client_gone=lambda: client_gone(environ),
        )
        response = relay(client, reply)
        # The body is the model service's, untouched: why this model answered goes in a
        # header (the words of GET /model's selected_by).
        response.headers[SELECTED_BY_HEADER] = selected_by
        return response

    @app.get("/models")
    def models():
        selected = session_model()
        listed = []
        for status in availability.all_statuses():
            entry = {
                **status.entry,
                "name": status.name,
                "available": status.available,
                "default": status.name == settings.default,
                "selected": status.name == selected,  # what this caller's /predict uses
                "circuit": clients[status.name].breaker.state,
            }
            if status.reason:
                entry["reason"] = status.reason
            listed.append(entry)
        return {"models": listed, "default": settings.default, "selected": selected}

    @app.post("/predict")
    def predict():
        incoming = read_incoming()
        why = selected_by(incoming.model, offered=clients)
        return forward(incoming.model or session_model(), incoming, why)

    @app.post("/model/<name>/predict")
    def predict_with(name: str):
        incoming = read_incoming()
        if incoming.model not in (None, name):
            raise errors.BadRequest(
                f"The path names model {name!r} but the body names {incoming.model!r}; "
                "drop one or make them agree."
            )
        return forward(name, incoming, "request")

    log.info(
        "v3 gateway routes %s (default %s)",
        {name: route.url for name, route in settings.routes.items()},
        settings.default,
    )
    return app


def relay(client: ModelClient, reply: Reply) -> Response:
    """The model service's answer, as it sent it, if it is the API's JSON."""
    if not reply.is_api_json():
        hint = f" {client.refusal(reply.status)}" if reply.status in (401, 403) else ""
        raise errors.ModelServiceFailed(
            f"Model {client.name!r} answered HTTP {reply.status} without the API's JSON.{hint}",
            model=client.name,
            upstream_status=reply.status,
        )
    response = Response(reply.body, status=reply.status, content_type=reply.content_type)
    response.headers["Server-Timing"] = f"upstream;dur={reply.elapsed_ms:.1f}"
    return response
