"""COUNTEREXAMPLE, do not copy: backend_v2 with a process-wide "current model" (see Q7).

Everything is the real backend_v2 (catalog, cache, sessions, gunicorn config)
except /predict, which does what a straightforward port of a one-model app
does: it makes the caller's model the process's current model at the start of
the request, then reads and decodes the image, then classifies with the current
model. gunicorn's gthread workers run several requests at once in one process,
so between those steps another caller's request can switch the current model,
and the response then comes from (and names) someone else's model.

tests/backend_v2/test_concurrency.py runs the same interleaved clients against
this app and against backend_v2, proving the test can see such mix-ups.
"""

from __future__ import annotations

from flask import Flask, session

from backend_v2.app import create_app as create_real_app
from backend_v2.settings import BackendV2Settings
from classifier.intake import read_image_request
from webservice.api import readiness_of
from webservice.model_choice import CHOICE_KEY

# THE BUG: one variable for every request thread of this worker.
current_model: str | None = None


def create_app() -> Flask:
    settings = BackendV2Settings()
    app = create_real_app(settings)
    served = readiness_of(app)  # the real backend_v2's served model

    @app.before_request
    def switch_to_callers_model():
        global current_model
        current_model = session.get(CHOICE_KEY) or settings.model_name

    def predict_with_the_current_model():
        global current_model
        image_request = read_image_request(settings.fetch_limits, check_model=served.check)
        if image_request.model:
            current_model = image_request.model
        return served.classify(image_request, model=current_model).to_json()

    app.view_functions["predict"] = predict_with_the_current_model
    return app
