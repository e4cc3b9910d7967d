"""The limit: the bare model in one process, decoding and preprocessing included.

No server, no HTTP: JPEG bytes in, top-5 out, as fast as the cores allow. Two
families of configurations are tried and the best one is the limit:
  - one process using every core (intra-op threads = cores) at batch 1..8;
  - one process per core, each single-threaded, at batch 1..8 (forked after
    the weights are loaded, so it is still one model load).
Run alone: python -m bench.limit --model resnet50 --weights W --photos DIR
"""

from __future__ import annotations

import os

# Before torch is imported: the parent must not start an OpenMP pool before it forks.
os.environ["OMP_NUM_THREADS"] = "1"

import argparse
import io
import json
import multiprocessing
import statistics
import time
from pathlib import Path

import torch
import torchvision
from PIL import Image

from bench.assets import load_photos
from classifier.folding import count_batch_norms, fold_batch_norm
from classifier.images import decode_image
from classifier.packing import prepack

WEIGHTS_ENUMS = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V2,
}


class BareModel:
    """torchvision's model and its weights' own transform, nothing else; `as_served`:
    with backend_v1's arithmetic (BatchNorms folded, channels_last weights and inputs,
    convolutions on packed weights)."""

    def __init__(self, model: str, weights: Path, *, as_served: bool = False) -> None:
        self.name = model
        self.module = torchvision.models.get_model(model, weights=None)
        self.module.load_state_dict(torch.load(weights, weights_only=True))
        self.module.eval()
        self.as_served = as_served
        if as_served:
            self.module = fold_batch_norm(self.module, model)
            self.module = self.module.to(memory_format=torch.channels_last)
            self.module = prepack(self.module, model)
        self.transform = WEIGHTS_ENUMS[model].transforms()

    def preprocess(self, data: bytes) -> torch.Tensor:
        return self.transform(Image.open(io.BytesIO(data)).convert("RGB"))

    def classify(self, jpegs: list[bytes]) -> torch.Tensor:
        return self.forward(torch.stack([self.preprocess(data) for data in jpegs]))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.as_served:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.module(batch).softmax(-1).topk(5)


class ForwardOnly:
    """The same model fed tensors preprocessed beforehand: the forward pass alone."""

    def __init__(self, model: BareModel) -> None:
        self.model = model

    def classify(self, tensors: list[torch.Tensor]) -> torch.Tensor:
        return self.model.forward(torch.stack(tensors))


def preprocess_ms(model: BareModel, jpegs: list[bytes], rounds: int = 5) -> float:
    """Mean milliseconds to decode and preprocess one photo on one thread, the way
    backend_v1 decodes (JPEG draft mode), which is never slower than the bare way."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    for _ in range(rounds):
        for data in jpegs:
            model.transform(decode_image(data))
    return (time.perf_counter() - started) * 1000 / (rounds * len(jpegs))


def run_for(model, items: list, batch: int, seconds: float) -> tuple[float, list[float]]:
    """(images per second, per-batch seconds) over about `seconds`, after one warm-up batch.

    `items`: what `model.classify` takes a list of (JPEG bytes, or tensors for ForwardOnly).
    """
    position = 0

    def next_batch() -> list:
        nonlocal position
        chosen = [items[(position + i) % len(items)] for i in range(batch)]
        position += batch
        return chosen

    model.classify(next_batch())
    durations: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or len(durations) < 3:
        begin = time.perf_counter()
        model.classify(next_batch())
        durations.append(time.perf_counter() - begin)
    return batch * len(durations) / (time.perf_counter() - started), durations


def _child(model, items, batch, seconds, barrier, results):
    torch.set_num_threads(1)
    barrier.wait()
    results.put(run_for(model, items, batch, seconds)[0])


def per_core_processes(model, items, batch, seconds, processes) -> float:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    results = context.Queue()
    children = [
        context.Process(target=_child, args=(model, items, batch, seconds, barrier, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    total = sum(results.get(timeout=seconds * 20 + 60) for _ in children)
    for child in children:
        child.join()
    return total


def best_configs(model, items, seconds, batches, cores) -> tuple[list[dict], list[float]]:
    """Every configuration: one process per core (single-threaded), and one on all cores;
    and the batch-1 durations on all cores, if batch 1 was among them."""
    configs: list[dict] = []
    batch1: list[float] = []
    if cores > 1:
        for batch in batches:
            rate = per_core_processes(model, items, batch, seconds, cores)
            configs.append({"processes": cores, "threads": 1, "batch": batch, "img_per_s": rate})
    torch.set_num_threads(cores)
    for batch in batches:
        rate, durations = run_for(model, items, batch, seconds)
        configs.append({"processes": 1, "threads": cores, "batch": batch, "img_per_s": rate})
        if batch == 1:
            batch1 = durations
    return configs, batch1


def measure(model: BareModel, jpegs: list[bytes], seconds, batches, cores) -> dict:
    configs, durations = best_configs(model, jpegs, seconds, batches, cores)
    if not durations:
        _, durations = run_for(model, jpegs, 1, seconds)
    best = max(configs, key=lambda config: config["img_per_s"])
    one_process = max(
        (c for c in configs if c["processes"] == 1), key=lambda config: config["img_per_s"]
    )
    return {
        "model": model.name,
        "as_served": model.as_served,
        "batch_norms_left": count_batch_norms(model.module),
        "cores": cores,
        "configs": configs,
        "best": best,
        "best_one_process": one_process,
        "batch1_latency_ms": statistics.median(durations) * 1000,
    }


def pipelined_bound(model: BareModel, jpegs: list[bytes], seconds, batches, cores) -> dict:
    """What a server that overlapped decoding with inference perfectly, at no cost of
    its own, could reach: every core busy, each image paying its forward pass's share
    of the cores plus its own preprocessing on one core.

    The bare model decodes, then runs the forward pass, one after the other; a server
    overlaps the two, so it may beat that, but never this bound.
    """
    tensors = [model.preprocess(data) for data in jpegs]
    forward, _ = best_configs(ForwardOnly(model), tensors, seconds, batches, cores)
    best = max(forward, key=lambda config: config["img_per_s"])
    per_image_ms = preprocess_ms(model, jpegs)
    core_seconds = cores / best["img_per_s"] + per_image_ms / 1000
    return {
        "forward_only": forward,
        "forward_only_best": best,
        "preprocess_ms_per_image": per_image_ms,
        "img_per_s": cores / core_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(WEIGHTS_ENUMS))
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--as-served", action="store_true",
        help="BatchNorms folded, channels_last, convolutions packed: as backend_v1 runs the model",
    )  # fmt: skip
    parser.add_argument(
        "--pipelined-bound", action="store_true",
        help="also the forward pass alone and the preprocessing cost (needs --as-served)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.pipelined_bound and not args.as_served:
        parser.error("--pipelined-bound is the served model's bound: add --as-served")
    batches = [int(b) for b in args.batches.split(",")]
    # One model load and one read of the photos serve every measurement.
    model = BareModel(args.model, args.weights, as_served=args.as_served)
    jpegs = [data for _, data in load_photos(args.photos)]
    result = measure(model, jpegs, args.seconds, batches, args.cores)
    if args.pipelined_bound:
        result["pipelined_bound"] = pipelined_bound(model, jpegs, args.seconds, batches, args.cores)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
