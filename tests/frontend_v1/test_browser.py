"""frontend_v1 for real: Streamlit and gunicorn processes, Chromium uploading a photo."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.frontend import (
    APP_TIMEOUT_SECONDS,
    backend_coming_back,
    chromium_page,
    needs_chromium,
)
from tests.support.images import sample_jpeg
from tests.support.servers import free_port, start_service

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]
# True when the element, or anything in it, hides part of its text (an ellipsis).
CUT_OFF = "el => [el, ...el.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth)"


@pytest.fixture
def frontend_v1(service_log_dir, lite0_backend):
    service = start_service("frontend_v1", service_log_dir, env={"SERVING_URL": lite0_backend.url})
    yield service
    service.stop()


def test_a_photo_uploaded_in_chromium_is_classified(frontend_v1):
    with chromium_page() as page:
        page.goto(frontend_v1.url)
        page.get_by_text("serves: efficientnet_lite0").wait_for()
        # The uploader states the backend's limit, and a class demo shows no developer tools.
        page.get_by_text("10MB per file").wait_for()
        assert page.get_by_role("button", name="Deploy").count() == 0
        uploader = page.locator('input[type="file"]')
        uploader.set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"shopping list"}]
        )
        expect(page.get_by_test_id("stAlert")).to_contain_text(
            "notes.txt is not an image this app can classify."
        )
        page.locator('input[type="file"]').set_input_files(
            files=[{"name": "chelsea.jpg", "mimeType": "image/jpeg", "buffer": sample_jpeg("cat")}]
        )
        page.get_by_text("chelsea.jpg").first.wait_for()
        classify = page.get_by_role("button", name="Classify")
        classify.click()
        # Streamlit streams a run's elements in, so wait for each one it should show.
        page.locator("h3", has_text=re.compile("cat", re.IGNORECASE)).wait_for()
        ms = re.compile(r"^\d+ ms$")
        expect(page.get_by_test_id("stMetricValue")).to_have_text(
            ["efficientnet_lite0", ms, ms], timeout=APP_TIMEOUT_SECONDS * 1000
        )
        assert page.locator('[data-testid="stAlert"]').count() == 0
        model_name = page.get_by_test_id("stMetricValue").first
        assert not model_name.evaluate(CUT_OFF), "the model's name is cut off"
    assert frontend_v1.alive()


def test_a_page_opened_while_the_backend_was_down_comes_back_by_itself(service_log_dir, tmp_path):
    port = free_port()  # the backend is not there yet
    env = {"SERVING_URL": f"http://127.0.0.1:{port}", "BACKEND_RETRY_SECONDS": "1"}
    frontend = start_service("frontend_v1", service_log_dir, env=env)
    try:
        with chromium_page() as page:
            page.goto(frontend.url)
            page.get_by_text("The backend is unreachable.").wait_for()
            page.get_by_text("Trying again every 1 s.").wait_for()
            page.screenshot(path=tmp_path / "backend-down.png")
            models = {"models": [{"name": "resnet18", "available": True, "default": True}]}
            with backend_coming_back(port, {"/models": models}):
                # No reload and no click: the page tries again by itself.
                page.get_by_text("serves: resnet18").wait_for()
                expect(page.get_by_text("The backend is unreachable.")).to_have_count(0)
                expect(page.get_by_role("button", name="Classify")).to_be_visible()
                page.screenshot(path=tmp_path / "backend-back.png")
    finally:
        frontend.stop()
