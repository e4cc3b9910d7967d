"""Frontend test helpers (both frontends, the gateway): AppTest, a hanging backend, a browser."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from pytest_httpserver import HTTPServer
from streamlit.testing.v1 import AppTest
from werkzeug import Request, Response

from tests.support.servers import REPO_ROOT, free_port

# Real predictions on a 2-core machine shared with other tests can take seconds.
APP_TIMEOUT_SECONDS = 90
CHROMIUM = "/usr/bin/chromium"
# The browser tests drive Debian's Chromium; where it is not installed (a student's
# laptop, say) they are skipped with that reason, as gcloud's are without gcloud.
# CI installs it (.ci/run), so there they always run.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason=f"Chromium is not installed at {CHROMIUM}"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def app_test(component: str) -> AppTest:
    """A fresh AppTest of `<component>/app.py` with empty Streamlit caches."""
    st.cache_data.clear()
    return AppTest.from_file(
        str(REPO_ROOT / component / "app.py"), default_timeout=APP_TIMEOUT_SECONDS
    )


def texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


def upload(at: AppTest, filename: str, data: bytes, mime: str = "image/jpeg") -> AppTest:
    at.file_uploader[0].set_value((filename, data, mime))
    return at.run()


class HangingPredict:
    """A /predict handler that answers only when released: a backend slower than the client."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, request: Request) -> Response:
        self.calls += 1
        self.release.wait(10)
        return Response('{"model": "late"}', content_type="application/json")


def opened_while_backend_down(app: AppTest, monkeypatch) -> tuple[AppTest, int]:
    """The page run with SERVING_URL on a loopback port where nothing listens yet: it
    says why it cannot load and that it tries again. The run, and the port."""
    port = free_port()
    monkeypatch.setenv("SERVING_URL", f"http://127.0.0.1:{port}")
    at = app.run()
    assert not at.exception
    assert texts(at.error)[0].startswith("The backend is unreachable.")
    assert texts(at.caption) == ["Trying again every 5 s."]  # and it does, by itself
    return at, port


@contextlib.contextmanager
def backend_coming_back(port: int, routes: dict[str, dict]) -> Iterator[HTTPServer]:
    """A stand-in backend that starts on `port`, where nothing listened before, and
    answers each GET route with its JSON: the backend of a page loaded while it was down."""
    backend = HTTPServer(host="127.0.0.1", port=port)
    for path, answer in routes.items():
        backend.expect_request(path, method="GET").respond_with_json(answer)
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()


@contextlib.contextmanager
def chromium_page() -> Iterator:
    """A Playwright page in Debian's Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(APP_TIMEOUT_SECONDS * 1000)
            yield page
        finally:
            browser.close()
