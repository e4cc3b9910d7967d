"""frontend_v2 for real: Streamlit and backend_v2 processes, Chromium picking a model."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.frontend import APP_TIMEOUT_SECONDS, chromium_page, needs_chromium
from tests.support.images import sample_jpeg
from tests.support.servers import start_service

pytestmark = [pytest.mark.slow, pytest.mark.browser, needs_chromium]


@pytest.fixture
def frontend_v2(service_log_dir, v2_backend):
    service = start_service("frontend_v2", service_log_dir, env={"SERVING_URL": v2_backend.url})
    yield service
    service.stop()


def test_a_model_picked_in_chromium_classifies_the_uploaded_photo(frontend_v2):
    with chromium_page() as page:
        page.goto(frontend_v2.url)
        picker = page.get_by_role("combobox", name="Model")
        picker.wait_for()  # the page default timeout: the first render can be slow here
        expect(picker).to_have_value("efficientnet_lite0 (default)")
        picker.click()
        unavailable = page.get_by_role("option", name="resnet50 (unavailable)", exact=True)
        expect(unavailable).to_be_visible()
        page.get_by_role("option", name="resnet18", exact=True).click()
        expect(picker).to_have_value("resnet18")
        page.get_by_text("The backend now uses resnet18 for your session.").wait_for()
        page.locator('input[type="file"]').set_input_files(
            files=[{"name": "chelsea.jpg", "mimeType": "image/jpeg", "buffer": sample_jpeg("cat")}]
        )
        page.get_by_text("chelsea.jpg").first.wait_for()
        page.get_by_role("button", name="Classify", exact=True).click()
        expect(page.get_by_test_id("stMetricValue").first).to_have_text(
            "resnet18", timeout=APP_TIMEOUT_SECONDS * 1000
        )
    assert frontend_v2.alive()
