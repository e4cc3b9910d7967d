"""Micro-measurements behind four optimisations, printed as JSON (python -m bench.micro).

- JPEG draft decoding: decode time of the largest sample photo, and of the same
  photo re-encoded at a phone camera's 12 megapixels, with and without it;
- loading without random initialisation: model load time both ways;
- BatchNorm folding: the served model's forward pass (channels_last, every core)
  at batch 1 and 4, unfolded and folded;
- packed convolutions: the folded model's forward pass at batch 1 and 4 on every
  core and at batch 4 on one (a per-core engine), unpacked and packed.
Each pair alternates its two sides so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from bench.assets import Assets
from classifier.fast_load import load_without_init
from classifier.images import decode_image
from classifier.inference import Predictor
from classifier.models import WeightsSource, load_model


def paired(first, second, rounds: int) -> tuple[float, float]:
    """Median ms of two callables, alternated."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for side, function in enumerate((first, second)):
            started = time.perf_counter()
            function()
            times[side].append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    assets = Assets(args.work)
    retina = (assets.photos_dir / "retina.jpg").read_bytes()
    buffer = io.BytesIO()
    Image.open(io.BytesIO(retina)).resize((4032, 3024)).save(buffer, "JPEG", quality=90)
    phone = buffer.getvalue()
    result = {}
    for label, data in (("retina 1411x1411", retina), ("12 MP (4032x3024)", phone)):
        full, draft = paired(
            lambda d=data: decode_image(d, draft_min_side=None), lambda d=data: decode_image(d), 7
        )
        result[f"decode {label}"] = {"full_ms": full, "draft_ms": draft}
    source = WeightsSource.parse(str(assets.weights(args.model)))
    regular, fast = paired(
        lambda: load_model(args.model, source), lambda: load_without_init(args.model, source), 5
    )
    result[f"load {args.model}"] = {"regular_ms": regular, "without_init_ms": fast}
    cores = len(os.sched_getaffinity(0))
    unfolded, folded, packed = (
        Predictor(
            load_without_init(args.model, source),
            channels_last=True,
            fold_batch_norm=fold,
            pack_convolutions=pack,
        )
        for fold, pack in ((False, False), (True, False), (True, True))
    )
    pairs = {
        "BatchNorms folded": (unfolded, folded, ("unfolded_ms", "folded_ms")),
        "convolutions packed": (folded, packed, ("unpacked_ms", "packed_ms")),
    }
    for threads, batch_size, rounds in ((cores, 1, 30), (cores, 4, 16), (1, 4, 8)):
        torch.set_num_threads(threads)
        batch = torch.rand(batch_size, 3, 224, 224)
        for change, (before, after, keys) in pairs.items():
            if threads != cores and change != "convolutions packed":
                continue
            for predictor in (before, after):  # the first pass of each sets up its kernels
                predictor.forward(batch)
            without, with_it = paired(
                lambda b=batch, p=before: p.forward(b),
                lambda b=batch, p=after: p.forward(b),
                rounds,
            )
            label = f"forward {args.model}, batch {batch_size}, {threads} thread(s), {change}"
            result[label] = dict(zip(keys, (without, with_it), strict=True))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
