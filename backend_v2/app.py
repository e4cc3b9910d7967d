"""backend_v2: every catalog model; each caller picks theirs.

create_app is a Flask application factory: settings in, app out. The app reads
each request, asks the served model (classifier/serving.py) to classify it, and
sends the answer back as JSON. How the models run (loading, batching concurrent
requests, sharing the cores) is the served model's business, the same in
backend_v1.

A caller chooses a model per request (`model` in the /predict body or form), or
as their own default with PUT /model/<name>, kept in a server-side session
(flask-session: the cookie holds only a signed session id). The model a
request uses comes from that request, else its session, else the service default.

gunicorn (gunicorn.conf.py) makes the app once, so the weights are loaded once
and shared by the worker processes it forks; each worker warms the default model up
before /ready answers 200.
"""

from __future__ import annotations

from flask import Flask, session

from backend_v2.settings import BackendV2Settings
from classifier.intake import read_image_request
from classifier.serving import create_served_model
from webservice.api import init_api
from webservice.model_choice import CHOICE_KEY, model_choice_blueprint, selected_by
from webservice.sessions import init_sessions


def create_app(settings: BackendV2Settings | None = None) -> Flask:
    settings = settings or BackendV2Settings()
    served = create_served_model(settings)  # loads MODEL_NAME now; missing weights stop here
    app = Flask(__name__)
    init_api(app, settings, readiness=served)  # JSON errors, /health, /ready, upload limit
    init_sessions(app, settings)  # each caller's session lives on the server, not in the cookie

    def choose(name: str) -> None:
        """PUT /model/<name>: load the model, then keep the choice in this caller's session."""
        served.load(name)  # unknown: 404, cannot load: 503, and the session stays as it was
        session[CHOICE_KEY] = name

    # GET /model, PUT /model/<name>, DELETE /model (webservice/model_choice.py)
    app.register_blueprint(model_choice_blueprint(default=settings.model_name, choose=choose))

    @app.get("/models")
    def models() -> dict[str, object]:
        selected = session.get(CHOICE_KEY) or settings.model_name  # what /predict would use
        entries = [{**entry, "selected": entry["name"] == selected} for entry in served.describe()]
        return {"models": entries, "default": settings.model_name, "selected": selected}

    @app.post("/predict")
    def predict() -> dict[str, object]:
        image_request = read_image_request(settings.fetch_limits, check_model=served.check)
        # The model this request names, else this caller's choice, else the service default.
        name = image_request.model or session.get(CHOICE_KEY) or settings.model_name
        answer = served.classify(image_request, model=name).to_json()
        # And which of the three it was, in GET /model's words.
        return {**answer, "selected_by": selected_by(image_request.model)}

    return app
