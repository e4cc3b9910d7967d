"""backend_v1: one model per process, behind Flask and gunicorn.

create_app is a Flask application factory: settings in, app out. The app reads
each request, asks the served model (classifier/serving.py) to classify it, and
sends the answer back as JSON. How the model runs (loading, batching concurrent
requests, sharing the cores) is the served model's business, the same in
backend_v2.

gunicorn (gunicorn.conf.py) makes the app once, so the weights are loaded once
and shared by the worker processes it forks; each worker warms the model up
before /ready answers 200.
"""

from __future__ import annotations

from flask import Flask

from backend_v1.settings import BackendV1Settings
from classifier.intake import read_image_request
from classifier.serving import create_served_model
from webservice.api import init_api


def create_app(settings: BackendV1Settings | None = None) -> Flask:
    settings = settings or BackendV1Settings()
    served = create_served_model(settings)  # loads MODEL_NAME now; missing weights stop here
    app = Flask(__name__)
    init_api(app, settings, readiness=served)  # JSON errors, /health, /ready, upload limit

    @app.get("/models")
    def models() -> dict[str, object]:
        return {"models": served.describe()}

    @app.post("/predict")
    def predict() -> dict[str, object]:
        image_request = read_image_request(settings.fetch_limits, check_model=served.check)
        # The model this request names, else the one this process serves.
        name = image_request.model or settings.model_name
        return served.classify(image_request, model=name).to_json()

    return app
