"""The catalog and weight resolution: default, file, folder, random, and failures."""

import pytest
import torch
import torchvision

from classifier.models import CATALOG, WeightsSource, get_spec, load_model, load_or_exit
from webservice import errors


def test_catalog_lists_the_five_models():
    assert set(CATALOG) == {
        "resnet18",
        "resnet50",
        "mobilenet_v3_large",
        "efficientnet_b0",
        "efficientnet_lite0",
    }


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_declared_parameter_counts_match_the_built_models(name):
    module = CATALOG[name].build()
    assert sum(p.numel() for p in module.parameters()) == CATALOG[name].parameters


def test_unknown_model_is_404_listing_names():
    with pytest.raises(errors.UnknownModel) as caught:
        get_spec("resnet1000")
    assert caught.value.status == 404
    assert "resnet18" in caught.value.details["available"]


def test_weights_source_parsing(tmp_path):
    assert WeightsSource.parse("default").kind == "default"
    assert WeightsSource.parse("").kind == "default"
    assert WeightsSource.parse("random").is_random
    assert WeightsSource.parse(str(tmp_path)).kind == "dir"
    assert WeightsSource.parse(str(tmp_path / "w.pth")).kind == "file"


def test_missing_default_weights_fail_fast_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(errors.ModelUnavailable) as caught:
        load_model("resnet18", WeightsSource.parse("default"))
    message = caught.value.message
    assert str(tmp_path) in message
    assert "python -m classifier.prefetch resnet18" in message
    assert "MODEL_WEIGHTS=random" in message


def test_load_or_exit_stops_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(SystemExit, match="cannot start: The published weights of resnet18"):
        load_or_exit("resnet18", WeightsSource.parse("default"))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(errors.ModelUnavailable, match="does not exist"):
        load_model("resnet18", WeightsSource.parse(str(tmp_path / "nope.pth")))


def test_state_dict_file_round_trip(tmp_path):
    reference = torchvision.models.resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    loaded = load_model("resnet18", WeightsSource.parse(str(path)))
    assert torch.equal(loaded.module.fc.weight, reference.fc.weight)
    assert not loaded.module.training
    assert loaded.weights_origin == str(path)


def test_state_dict_folder_holds_one_file_per_model(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    source = WeightsSource.parse(str(tmp_path))
    assert source.missing_reason(CATALOG["resnet18"]) is None
    assert "does not exist" in source.missing_reason(CATALOG["mobilenet_v3_large"])


def test_wrong_state_dict_says_what_it_must_be(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(errors.ModelUnavailable, match="does not fit resnet50"):
        load_model("resnet50", WeightsSource.parse(str(path)))


def test_random_weights_are_logged_loudly(caplog):
    loaded = load_model("resnet18", WeightsSource.parse("random"))
    assert loaded.weights_origin.startswith("random")
    assert "RANDOM, UNTRAINED WEIGHTS" in caplog.text


def test_packaged_model_is_available_offline():
    spec = CATALOG["efficientnet_lite0"]
    assert WeightsSource.parse("default").missing_reason(spec) is None
    assert spec.default_weights_path().stat().st_size > 10_000_000
