"""bench.limit's command line: the served model's ceiling and pipelined bound.

Run as the harness runs it, in its own process: bench.limit sets OMP_NUM_THREADS
at import, which must not leak into this test process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torchvision

from tests.support.images import sample_jpeg


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("limit")
    torch.manual_seed(0)
    weights = folder / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    photos = folder / "photos"
    photos.mkdir()
    for name in ("cat", "coffee"):
        (photos / f"{name}.jpg").write_bytes(sample_jpeg(name))
    return weights, photos, folder


def run_limit(inputs, *options):
    weights, photos, _ = inputs
    command = [
        sys.executable, "-m", "bench.limit", "--model", "resnet18", "--weights", str(weights),
        "--photos", str(photos), "--seconds", "0.3", "--batches", "2", "--cores", "1", *options,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_the_ceiling_runs_the_model_as_served_and_bounds_a_pipelined_server(inputs):
    out = inputs[2] / "ceiling.json"
    done = run_limit(inputs, "--as-served", "--pipelined-bound", "--out", str(out))
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["as_served"] is True
    assert result["batch_norms_left"] == 0
    assert result["best"]["batch"] == 2
    assert result["best"]["img_per_s"] > 0
    bound = result["pipelined_bound"]
    # Decoding costs something, so the bound is below the forward pass alone.
    assert 0 < bound["img_per_s"] < bound["forward_only_best"]["img_per_s"]
    assert bound["preprocess_ms_per_image"] > 0
