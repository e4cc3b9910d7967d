"""v3_gateway/openapi.yaml: valid Swagger 2.0, the gateway's own API, a backend per model."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from openapi_spec_validator import OpenAPIV2SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound

from tests.support.servers import REPO_ROOT
from v3_gateway.app import create_app
from v3_gateway.settings import GatewaySettings
from webservice.sessions import SessionSettings

SPEC_PATH = REPO_ROOT / "v3_gateway" / "openapi.yaml"
PER_MODEL = re.compile(r"^/model/(?P<name>[a-z0-9_.-]+)/predict$")


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(SPEC_PATH.read_text())


def test_is_valid_swagger_2(spec):
    assert spec["swagger"] == "2.0"
    validate(spec, cls=OpenAPIV2SpecValidator)
    broken = copy.deepcopy(spec)
    del broken["paths"]["/models"]["get"]["responses"]
    with pytest.raises(OpenAPIValidationError):  # the validator does look
        validate(broken, cls=OpenAPIV2SpecValidator)


def test_every_operation_is_one_the_python_gateway_serves(spec, tmp_path):
    models = sorted(m["name"] for m in per_model_paths(spec))
    app = create_app(
        GatewaySettings(model_services=",".join(f"{m}=http://127.0.0.1:9" for m in models)),
        SessionSettings(session_dir=str(tmp_path)),
    )
    urls = app.url_map.bind("localhost")
    for path, operations in spec["paths"].items():
        concrete = path.replace("{name}", models[0])
        for method in operations:
            try:
                urls.match(concrete, method=method.upper())
            except (NotFound, MethodNotAllowed):
                pytest.fail(f"{method.upper()} {path} is in openapi.yaml but not in the gateway")


def per_model_paths(spec) -> list[dict]:
    found = []
    for path, operations in spec["paths"].items():
        if match := PER_MODEL.match(path):
            found.append({"name": match["name"], "backend": operations["post"]["x-google-backend"]})
    return found


def test_each_model_path_goes_straight_to_its_service(spec):
    routed = per_model_paths(spec)
    assert len(routed) >= 2
    for item in routed:
        assert item["backend"]["address"] == f"${{MODEL_URL_{item['name']}}}/predict"
        assert item["backend"]["path_translation"] == "CONSTANT_ADDRESS"
    # Everything else (body form, sessions) goes to the Python gateway.
    assert spec["x-google-backend"]["address"] == "${GATEWAY_URL}"
    assert spec["x-google-backend"]["path_translation"] == "APPEND_PATH_TO_ADDRESS"
