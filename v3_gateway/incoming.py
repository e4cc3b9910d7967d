"""Read a /predict request just enough to route it: which model, and the body to pass on.

The image is never decoded here (and torch never imported): an upload's
multipart bytes go to the model service exactly as they came; a JSON body is
passed on with its "model" field set to the model it is routed to.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from webservice import errors


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
        body = _raw_body()
        boundary = request.mimetype_params.get("boundary", "").encode("latin-1")
        if boundary and not _may_name_a_model(body, boundary):
            return Incoming(None, body, request.content_type)
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


def _raw_body() -> bytes:
    """The request body as received, read once straight from the WSGI input.

    werkzeug's get_data() copies a body through its stream wrappers, a measurable
    share of the gateway's cost (the performance notes) for bytes it only passes on. The
    upload limit it would enforce is checked here; werkzeug then reads the same
    bytes again if the form has to be parsed, so what is forwarded is what came.
    """
    limit, length = request.max_content_length, request.content_length
    if limit is not None and length is not None and length > limit:
        raise RequestEntityTooLarge()
    stream = request.environ["wsgi.input"]
    if length is not None:
        body = stream.read(length)
    else:  # chunked: read one byte past the limit to know it was passed
        body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise RequestEntityTooLarge()
    # From here on the environ describes the plain body that was read.
    request.environ.pop("HTTP_TRANSFER_ENCODING", None)
    request.environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))})
    return body


def _may_name_a_model(body: bytes, boundary: bytes) -> bool:
    """Could a part of this multipart body be the "model" field?

    The gateway needs only that one small field, and werkzeug's form parser copies
    every byte of the upload through Python-level chunks to find it (most of the
    gateway's own work, the performance notes). The parts' header blocks are
    found with bytes.find instead (a delimiter cannot occur inside a part) and
    searched for the name, case-insensitively and in its RFC 2231 form ("name*="),
    so this errs only towards a full parse. Anything unexpected: a full parse.
    """
    delimiter = b"--" + boundary
    position = body.find(delimiter)
    if position == -1:
        return True
    while True:
        headers_start = position + len(delimiter)
        if body.startswith(b"--", headers_start):
            return False  # the closing delimiter
        headers_end = body.find(b"\r\n\r\n", headers_start)
        if headers_end == -1:
            return True
        headers = body[headers_start:headers_end].lower()
        if b"model" in headers or b"name*" in headers:
            return True
        position = body.find(b"\r\n" + delimiter, headers_end)
        if position == -1:
            return True  # no closing delimiter
        position += 2


def _model_field(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.BadRequest('"model" must be a string.')
    return value.strip() or None
