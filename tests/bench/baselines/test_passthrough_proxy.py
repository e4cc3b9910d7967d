"""The gateway's floor in bench/: a bare proxy that relays bodies both ways untouched."""

import importlib

from werkzeug.test import Client


def test_bodies_and_answers_pass_through_untouched(httpserver, monkeypatch):
    monkeypatch.setenv("UPSTREAM_URL", httpserver.url_for("").rstrip("/"))
    proxy = importlib.reload(importlib.import_module("bench.baselines.passthrough_proxy"))
    body = b"--b\r\n\x00\xff photo bytes \r\n--b--\r\n"
    httpserver.expect_request(
        "/predict", method="POST", data=body, headers={"Content-Type": "multipart/form-data; b=1"}
    ).respond_with_data(b'{"error": {}}', status=422, content_type="application/json")
    answer = Client(proxy.create_app()).post(
        "/predict", data=body, content_type="multipart/form-data; b=1"
    )
    assert (answer.status_code, answer.content_type) == (422, "application/json")
    assert answer.data == b'{"error": {}}'
    httpserver.check_assertions()
