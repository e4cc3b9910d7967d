"""classifier.prefetch: which weights a build bakes in (nothing is downloaded here)."""

import pytest
import torchvision

from classifier import prefetch
from classifier.models import CATALOG

DOWNLOADABLE = [name for name, spec in CATALOG.items() if spec.torchvision_weights]


@pytest.fixture
def downloads(tmp_path, monkeypatch):
    """The weights a run asks torchvision for, recorded instead of downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    asked = []

    def record(weights, *args, **kwargs):
        asked.append(str(weights))

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", record)
    return asked


def test_no_names_fetch_nothing(downloads, capsys):
    """An empty PREFETCH_MODELS bakes no weights; it used to mean every model."""
    assert prefetch.main([]) == 0
    assert downloads == []
    assert "nothing to fetch" in capsys.readouterr().out


def test_all_fetches_every_downloadable_catalog_model(downloads):
    assert prefetch.main(["--all"]) == 0
    assert sorted(downloads) == sorted(CATALOG[name].torchvision_weights for name in DOWNLOADABLE)


def test_named_models_only(downloads):
    assert prefetch.main(["resnet18"]) == 0
    assert downloads == ["ResNet18_Weights.IMAGENET1K_V1"]


def test_packaged_weights_need_no_download(downloads, capsys):
    assert prefetch.main(["efficientnet_lite0"]) == 0
    assert downloads == []
    assert capsys.readouterr().out.strip().endswith(".pth")


def test_names_and_all_together_are_refused(downloads):
    with pytest.raises(SystemExit) as stopped:
        prefetch.main(["resnet18", "--all"])
    assert stopped.value.code == 2
    assert downloads == []
