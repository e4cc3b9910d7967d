"""Reading a /predict request at the gateway: the model an upload names is found
whether or not werkzeug's form parser runs, and the bytes pass on untouched."""

from __future__ import annotations

import io

import pytest
from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from tests.support.images import sample_jpeg
from v3_gateway.incoming import _may_name_a_model, read_incoming

BOUNDARY = "XyZ-b0undary"
JPEG = sample_jpeg("cat")


def part(headers: str, content: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def multipart(*parts: bytes, closed: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


IMAGE = part(
    'Content-Disposition: form-data; name="image"; filename="cat.jpg"\r\nContent-Type: image/jpeg',
    JPEG,
)
# The field name inside a part's content is data, not a field.
ENCODED_NAME = part("Content-Disposition: form-data; name*=UTF-8''%6Dodel", b"resnet18")
IMAGE_MENTIONING_MODEL = part(
    'Content-Disposition: form-data; name="image"; filename="a.jpg"',
    JPEG + b'name="model"\r\n\r\nresnet18',
)


def read(body: bytes):
    app = Flask(__name__)
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    with app.test_request_context("/predict", method="POST", data=body, content_type=content_type):
        return read_incoming()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (multipart(IMAGE), False),
        (multipart(IMAGE_MENTIONING_MODEL), False),
        (multipart(IMAGE, part('Content-Disposition: form-data; name="model"', b"x")), True),
        (multipart(part('Content-Disposition: form-data; name="MODEL"', b"x"), IMAGE), True),
        (
            multipart(IMAGE, part("Content-Disposition: form-data; name*=UTF-8''%6Dodel", b"x")),
            True,
        ),
        (multipart(IMAGE, closed=False), True),  # truncated: let werkzeug judge it
        (JPEG, True),  # no delimiter at all
    ],
    ids=["image only", "name in content", "model field", "upper case", "RFC 2231", "open", "raw"],
)
def test_only_bodies_that_cannot_name_a_model_skip_the_form_parser(body, expected):
    assert _may_name_a_model(body, BOUNDARY.encode()) is expected


@pytest.mark.parametrize(
    ("parts", "model"),
    [
        ((IMAGE,), None),
        ((IMAGE_MENTIONING_MODEL,), None),
        ((IMAGE, part('Content-Disposition: form-data; name="model"', b"resnet18")), "resnet18"),
        ((part('Content-Disposition: form-data; name="model"', b" lite0 "), IMAGE), "lite0"),
        ((IMAGE, ENCODED_NAME), "resnet18"),
    ],
)
def test_the_model_an_upload_names_is_read_and_the_bytes_kept(parts, model):
    body = multipart(*parts)
    incoming = read(body)
    assert incoming.model == model
    assert incoming.body == body


@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "chunked"])
def test_an_upload_over_the_limit_is_refused_with_or_without_a_length(declared):
    body = multipart(IMAGE)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = len(body) - 1
    headers = {} if declared else {"Transfer-Encoding": "chunked"}
    with app.test_request_context(
        "/predict", method="POST", input_stream=io.BytesIO(body), headers=headers,
        content_length=len(body) if declared else None,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    ):  # fmt: skip
        assert (request.content_length is None) is not declared
        with pytest.raises(RequestEntityTooLarge):
            read_incoming()


def test_an_upload_without_a_length_is_read_whole():
    body = multipart(IMAGE, part('Content-Disposition: form-data; name="model"', b"resnet18"))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = len(body)
    with app.test_request_context(
        "/predict", method="POST", input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked"},
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    ):  # fmt: skip
        incoming = read_incoming()
    assert (incoming.model, incoming.body) == ("resnet18", body)
