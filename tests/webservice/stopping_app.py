"""A service set up the way every service is (init_api under the shared gunicorn
settings), whose requests take as long as a test asks: what the shutdown tests stop.

POST /work?seconds=N logs "work started", reads its body (an upload, however
slowly it comes), waits N seconds and answers.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, request

from webservice.api import UploadSettings, init_api


class _Ready:
    def warm_up(self, cores: int | None = None) -> None:
        pass

    def not_ready_reason(self) -> str | None:
        return None


def create_app() -> Flask:
    app = Flask(__name__)
    init_api(app, UploadSettings(), readiness=_Ready())
    log = logging.getLogger("stopping_app")

    @app.post("/work")
    def work() -> dict[str, float | int]:
        log.info("work started")
        body = request.get_data()
        seconds = float(request.args.get("seconds", "0"))
        time.sleep(seconds)
        return {"slept": seconds, "bytes": len(body)}

    return app
