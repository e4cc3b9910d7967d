"""Read a /predict request: a JSON {"url", "model", "top_k"} body or a multipart upload."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import request

from classifier.fetch import FetchLimits, fetch_image_bytes
from webservice import errors


@dataclass(frozen=True)
class ImageRequest:
    """What a /predict call asked for, with the image bytes already in hand."""

    data: bytes
    source: str  # "upload" or "url"
    model: str | None
    top_k: int | None
    fetch_ms: float = 0.0


def read_image_request(
    limits: FetchLimits, check_model: Callable[[str], object] | None = None
) -> ImageRequest:
    """Parse a JSON {"url", "model", "top_k"} body or a multipart upload in field `image`.

    `check_model` raises for a model the service cannot run; it is called before
    an image URL is fetched, so a request that names a bad model costs no download.
    """
    if request.mimetype == "multipart/form-data":
        return _read_upload(check_model)
    if request.is_json:
        return _read_json(limits, check_model)
    raise errors.UnsupportedImage(
        'Send JSON {"url": "https://..."} or a multipart upload in the field \'image\' '
        f"(Content-Type was {request.mimetype or 'missing'!r})."
    )


def _read_upload(check_model: Callable[[str], object] | None) -> ImageRequest:
    upload = request.files.get("image")
    if upload is None:
        raise errors.BadRequest(
            "The multipart upload has no file in the field 'image'.",
            fields=sorted(request.files),
        )
    model = _checked_model(request.form.get("model"), check_model)
    top_k = _optional_top_k(request.form.get("top_k"))
    return ImageRequest(upload.read(), "upload", model, top_k)


def _read_json(limits: FetchLimits, check_model: Callable[[str], object] | None) -> ImageRequest:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise errors.BadRequest('The body must be a JSON object such as {"url": "https://..."}.')
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise errors.BadRequest('The JSON body needs "url": the http(s) address of an image.')
    model = _checked_model(body.get("model"), check_model)
    top_k = _optional_top_k(body.get("top_k"))
    started = time.perf_counter()
    data = fetch_image_bytes(url.strip(), limits)
    return ImageRequest(data, "url", model, top_k, (time.perf_counter() - started) * 1000)


def _checked_model(value: Any, check_model: Callable[[str], object] | None) -> str | None:
    model = _optional_str(value, "model")
    if model and check_model:
        check_model(model)
    return model


def _optional_str(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.BadRequest(f'"{name}" must be a string.')
    return value.strip()


def _optional_top_k(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        top_k = int(value)
        if isinstance(value, bool) or str(top_k) != str(value).strip():
            raise ValueError
    except (TypeError, ValueError):
        raise errors.BadRequest('"top_k" must be a whole number from 1 to 20.') from None
    if not 1 <= top_k <= 20:
        raise errors.BadRequest('"top_k" must be a whole number from 1 to 20.')
    return top_k
