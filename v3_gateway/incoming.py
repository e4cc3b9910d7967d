"""Read a /predict request just enough to route it: which model, and the body to pass on.

The image is never decoded here (and torch never imported): an upload's
multipart bytes go to the model service exactly as they came; a JSON body is
passed on with its "model" field set to the model it is routed to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import request

from classifier import errors


@dataclass(frozen=True)
class Incoming:
    model: str | None  # the model the body names, if it names one
    body: bytes
    content_type: str
    json_body: dict | None = None

    def for_model(self, name: str) -> Incoming:
        """The body to send to `name`'s service (JSON gets "model": name)."""
        if self.json_body is None:
            return self
        body = json.dumps({**self.json_body, "model": name}).encode()
        return Incoming(name, body, "application/json", self.json_body)


def read_incoming() -> Incoming:
    if request.mimetype == "multipart/form-data":
        # Cache the raw bytes first; werkzeug then parses the form from that copy,
        # so the bytes forwarded are the ones received.
        body = request.get_data(cache=True)
        return Incoming(_model_field(request.form.get("model")), body, request.content_type)
    if request.is_json:
        document = request.get_json(silent=True)
        if not isinstance(document, dict):
            raise errors.BadRequest(
                'The body must be a JSON object such as {"url": "https://..."}.'
            )
        return Incoming(
            _model_field(document.get("model")),
            request.get_data(cache=True),
            "application/json",
            document,
        )
    raise errors.UnsupportedImage(
        'Send JSON {"url": "https://..."} or a multipart upload in the field \'image\' '
        f"(Content-Type was {request.mimetype or 'missing'!r})."
    )


def _model_field(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.BadRequest('"model" must be a string.')
    return value.strip() or None
