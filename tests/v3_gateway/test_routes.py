"""Routing configuration: MODEL_SERVICES pairs or a YAML file, checked at start."""

from __future__ import annotations

import pytest

from v3_gateway.app import load_settings
from v3_gateway.routes import RouteConfigError, build_routes, load_yaml, parse_pairs
from v3_gateway.settings import GatewaySettings

LITE0_URL = "https://model-efficientnet-lite0-abc123-nn.a.run.app"


def test_pairs_keep_order_and_the_first_is_the_default():
    settings = GatewaySettings(
        model_services=f" resnet18=http://127.0.0.1:8092/ ,\nefficientnet_lite0={LITE0_URL}"
    )
    assert list(settings.routes) == ["resnet18", "efficientnet_lite0"]
    assert settings.routes["resnet18"].url == "http://127.0.0.1:8092"  # no trailing slash
    assert settings.default == "resnet18"
    assert (
        GatewaySettings(
            model_services=settings.model_services, default_model="efficientnet_lite0"
        ).default
        == "efficientnet_lite0"
    )


def test_yaml_mapping_and_list(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(f"efficientnet_lite0: {LITE0_URL}\nresnet18: http://127.0.0.1:8092\n")
    as_list = tmp_path / "list.yaml"
    as_list.write_text(
        f"- name: efficientnet_lite0\n  url: {LITE0_URL}\n- name: resnet18\n  url: http://127.0.0.1:8092\n"
    )
    assert load_yaml(mapping) == load_yaml(as_list)
    settings = GatewaySettings(model_services_file=as_list)
    assert list(settings.routes) == ["efficientnet_lite0", "resnet18"]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "no model services configured"),
        ([("resnet18", "ftp://host")], r"must be http\(s\)"),
        ([("resnet18", "127.0.0.1:8092")], r"must be http\(s\)"),
        ([("ResNet 18", "http://h")], "lower-case"),
        ([("resnet18", "http://a"), ("resnet18", "http://b")], "listed twice"),
        ([("resnet18", "http://a/?x=1")], "query"),
    ],
)
def test_bad_routes_say_what_to_fix(pairs, message):
    with pytest.raises(RouteConfigError, match=message):
        build_routes(pairs)


def test_bad_pairs_and_files(tmp_path):
    with pytest.raises(RouteConfigError, match="not name=url"):
        parse_pairs("resnet18:http://127.0.0.1:8092")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(RouteConfigError, match="mapping"):
        load_yaml(scalar)
    with pytest.raises(RouteConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")


def test_start_fails_with_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_SERVICES", "resnet18=http://127.0.0.1:8092")
    monkeypatch.setenv("DEFAULT_MODEL", "resnet50")
    with pytest.raises(SystemExit, match="DEFAULT_MODEL='resnet50' is not one of"):
        load_settings()
    monkeypatch.delenv("DEFAULT_MODEL")
    monkeypatch.setenv("MODEL_SERVICES_FILE", str(tmp_path / "routes.yaml"))
    with pytest.raises(SystemExit, match="not both"):
        load_settings()
    monkeypatch.delenv("MODEL_SERVICES")
    monkeypatch.delenv("MODEL_SERVICES_FILE")
    with pytest.raises(SystemExit, match="set MODEL_SERVICES=name=url"):
        load_settings()
