"""Streamlit pieces both frontends share: the client per browser session, image input,
results and error messages.

The frontend images copy only apiclient/ and their own folder, so shared UI
code lives here; it imports Streamlit, which `import apiclient` never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

import pandas as pd
import streamlit as st

from apiclient.client import ApiClient
from apiclient.errors import ApiClientError, BackendError
from apiclient.settings import ClientSettings

CLIENT_KEY = "api_client"
# The formats the backends decode (classifier/images.py ALLOWED_FORMATS), by file extension.
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp"]
FORMAT_NAMES = "JPEG, PNG, WebP, GIF or BMP"
MB = 1024 * 1024  # Streamlit's upload limit is in these units
# Failures that only a change of the frontend's settings fixes: trying again is no use.
SETUP_ERRORS = ("serving_url_missing", "serving_url_invalid")


def session_client(settings: ClientSettings) -> ApiClient:
    """This browser session's own client, created once and kept in st.session_state.

    One requests.Session per browser session, never one per process: the
    session's cookie jar holds a v2 backend's session cookie, which must not be
    shared between two users. Raises ServingUrlMissing/ServingUrlInvalid.
    """
    client = st.session_state.get(CLIENT_KEY)
    if client is None:
        client = ApiClient.from_settings(settings)
        st.session_state[CLIENT_KEY] = client
    return client


def fetch_models(client: ApiClient, ttl_seconds: float) -> list[dict[str, Any]]:
    """GET /models, cached per backend URL for `ttl_seconds` (failures are not cached)."""

    # Defined here because st.cache_data takes its TTL when it decorates; Streamlit
    # keys the cache by the function's name and source, so every call shares it.
    @st.cache_data(ttl=ttl_seconds, show_spinner=False)
    def _models(base_url: str, _client: ApiClient) -> list[dict[str, Any]]:
        return list(_client.models().get("models", []))

    return _models(client.base_url, client)


@dataclass(frozen=True)
class ImageChoice:
    """The image the user gave: an upload's bytes or a URL the backend will fetch."""

    source: Literal["upload", "url"]
    name: str
    data: bytes = b""
    url: str = ""
    upload_id: str = ""  # Streamlit's id of this upload: a new upload gets a new one

    @property
    def key(self) -> str:
        """Tells one input from another, so a result is shown only beside its own image."""
        return f"upload:{self.upload_id}" if self.source == "upload" else f"url:{self.url}"

    def predict(self, client: ApiClient, *, model: str | None, top_k: int) -> dict[str, Any]:
        if self.source == "upload":
            return client.predict_upload(self.data, self.name, model=model, top_k=top_k)
        return client.predict_url(self.url, model=model, top_k=top_k)


def upload_limit_mb(max_upload_bytes: int) -> int:
    """The backend's upload limit in whole MB (Streamlit's unit), never above it."""
    return max(1, max_upload_bytes // MB)


def unsupported_reason(filename: str, limit_mb: int) -> str | None:
    """Why an uploaded file will not be sent to the backend, or None if it may be."""
    extension = Path(filename).suffix.lower().removeprefix(".")
    if extension in UPLOAD_TYPES:
        return None
    return (
        f"{filename} is not an image this app can classify. "
        f"Upload a {FORMAT_NAMES} file of at most {limit_mb} MB."
    )


def image_input(key: str, max_upload_bytes: int) -> ImageChoice | None:
    """A URL box and a file uploader; an upload wins over a URL. Shows a preview.

    The uploader takes any file type and says here why one is refused: with a
    `type=` filter, Streamlit would mark another file with a red icon and no words.
    """
    limit = upload_limit_mb(max_upload_bytes)
    url = st.text_input(
        "Image URL", key=f"{key}-url", placeholder="https://upload.wikimedia.org/...jpg"
    ).strip()
    upload = st.file_uploader(
        f"... or upload an image ({FORMAT_NAMES})",
        key=f"{key}-upload",
        max_upload_size=limit,
        help=f"At most {limit} MB, the backend's limit (MAX_UPLOAD_BYTES).",
    )
    if upload is not None:
        reason = unsupported_reason(upload.name, limit)
        if reason:
            st.error(reason)
            return None
        choice = ImageChoice(
            "upload", upload.name, data=upload.getvalue(), upload_id=upload.file_id
        )
    elif url:
        choice = ImageChoice("url", url, url=url)
    else:
        st.info("Give an image URL or upload an image to classify it.")
        return None
    _preview(choice)
    return choice


def _preview(choice: ImageChoice) -> None:
    try:
        # A URL is handed to the browser as is: the frontend server never fetches it.
        st.image(choice.data or choice.url, caption=choice.name, width=320)
    except Exception:  # the backend judges the bytes and explains; the preview is a nicety
        st.caption(f"No preview for {choice.name}; the backend will check it.")


@dataclass(frozen=True)
class Outcome:
    """One finished call: its JSON and round trip, or the error it raised."""

    image_key: str
    result: dict[str, Any] | None = None
    round_trip_ms: float = 0.0
    error: ApiClientError | None = None


def timed_call(image_key: str, call: Callable[[], dict[str, Any]]) -> Outcome:
    """Run one API call and time its round trip; an ApiClientError becomes the outcome."""
    started = time.perf_counter()
    try:
        result = call()
    except ApiClientError as error:
        return Outcome(image_key, error=error)
    return Outcome(image_key, result, (time.perf_counter() - started) * 1000)


def render_outcome(outcome: Outcome) -> None:
    if outcome.error is not None:
        render_error(outcome.error)
    elif outcome.result is not None:
        render_prediction(outcome.result, outcome.round_trip_ms)


def predictions_frame(result: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"label": p["label"], "probability": float(p["probability"])}
            for p in result.get("predictions", [])
        ],
        columns=["label", "probability"],
    )


def render_prediction(result: dict[str, Any], round_trip_ms: float) -> None:
    """The top-k as a bar chart and a table, with the model and both latencies."""
    timing = result.get("timing_ms") or {}
    backend_ms = timing.get("total_ms")
    st.subheader(f"{result.get('category', '?')}")
    # Model names such as mobilenet_v3_large need half the width not to be cut off.
    model, backend, trip = st.columns([2, 1, 1])
    model.metric("Model", result.get("model", "?"))
    backend.metric("Backend time", "?" if backend_ms is None else f"{backend_ms:.0f} ms")
    trip.metric("Round trip", f"{round_trip_ms:.0f} ms")
    if result.get("warning"):
        st.warning(f"The backend warns: {result['warning']}")
    frame = predictions_frame(result)
    st.bar_chart(frame, x="label", y="probability", horizontal=True, sort="-probability")
    st.dataframe(
        frame,
        hide_index=True,
        column_config={
            "probability": st.column_config.ProgressColumn(
                "probability", format="%.3f", min_value=0.0, max_value=1.0
            )
        },
    )
    if timing:
        st.caption(
            "Backend stages (ms): " + ", ".join(f"{stage} {ms}" for stage, ms in timing.items())
        )


def stop_and_retry(error: ApiClientError, retry_seconds: float) -> NoReturn:
    """Say why the page cannot load and stop it there. Unless the set-up itself is
    wrong, offer to try again, and try again by itself every `retry_seconds`, so the
    page comes back when the backend does, without a reload."""
    render_error(error)
    if error.kind not in SETUP_ERRORS:
        st.button("Try again", key="retry-now")  # a click reruns the page
        _rerun_every(retry_seconds)
    st.stop()


def _rerun_every(seconds: float) -> None:
    shown_at = time.monotonic()

    # Streamlit reruns this fragment alone every `seconds`; from the second run on,
    # it reruns the whole page, which tries the backend again.
    @st.fragment(run_every=seconds)
    def retry() -> None:
        if time.monotonic() - shown_at >= seconds / 2:
            st.rerun()
        st.caption(f"Trying again every {seconds:g} s.")

    retry()


def render_error(error: ApiClientError) -> None:
    """One plain sentence per failure state, with the backend's own words when it gave any."""
    if error.kind in SETUP_ERRORS:
        st.error(f"No backend configured. {error.message}")
    elif error.kind == "unreachable":
        st.error(f"The backend is unreachable. {error.message}")
    elif error.kind == "timeout":
        st.error(f"The backend timed out. {error.message}")
    elif error.kind == "auth":
        st.error(f"The frontend could not prove its identity to the backend. {error.message}")
    elif isinstance(error, BackendError) and error.code == "caller_refused":
        st.error(error.message)  # already says who refused whom, and the fix
    elif isinstance(error, BackendError):
        st.error(
            f"The backend refused the request (HTTP {error.status}, {error.code}): {error.message}"
        )
    else:
        st.error(f"Unexpected answer from the backend. {error.message}")
