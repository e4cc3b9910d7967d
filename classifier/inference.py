"""One loaded model made ready to run, in three stages each testable alone:
preprocess (PIL images to a batch), forward (a batch to class probabilities),
top-k (probabilities to labelled predictions)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, replace

import torch
from PIL import Image

from classifier import folding, packing
from classifier.models import LoadedModel, imagenet_categories

log = logging.getLogger(__name__)
MAX_TOP_K = 20


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float

    def to_json(self) -> dict[str, str | int | float]:
        return asdict(self)


def configure_threads(threads: int) -> None:
    """Give this process an explicit intra-op thread budget (workers x threads <= cores)."""
    torch.set_num_threads(max(1, threads))
    log.info("torch uses %d intra-op thread(s) in pid %d", torch.get_num_threads(), os.getpid())


class Predictor:
    """One loaded model and what it takes to run it on PIL images."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        channels_last: bool = False,
        fold_batch_norm: bool = False,
        pack_convolutions: bool = False,
    ) -> None:
        if fold_batch_norm:
            loaded = replace(loaded, module=folding.fold_batch_norm(loaded.module, loaded.name))
        # NHWC lets oneDNN skip layout reorders.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            # Module.to takes memory_format, though torch's own annotations leave it out.
            loaded.module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if pack_convolutions:  # after folding: the packed weights are the folded ones
            loaded = replace(loaded, module=packing.prepack(loaded.module, loaded.name))
        self.loaded = loaded
        self.categories = imagenet_categories()

    @property
    def name(self) -> str:
        return self.loaded.name

    @property
    def packed(self) -> bool:
        """Whether the convolutions run on packed weights (classifier/packing.py)."""
        return isinstance(self.loaded.module, packing.PrepackedModel)

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        return torch.stack([self.loaded.transform(image) for image in images])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Class probabilities for a preprocessed batch."""
        with torch.inference_mode():
            batch = batch.contiguous(memory_format=self.memory_format)
            logits: torch.Tensor = self.loaded.module(batch)
            return logits.softmax(dim=-1)

    def top_k(self, probabilities: torch.Tensor, k: int) -> list[list[Prediction]]:
        k = max(1, min(k, MAX_TOP_K, probabilities.shape[-1]))
        values, indices = probabilities.topk(k, dim=-1)
        return [
            [
                Prediction(self.categories[i], i, p)
                for p, i in zip(row_values.tolist(), row_indices.tolist(), strict=True)
            ]
            for row_values, row_indices in zip(values, indices, strict=True)
        ]

    def classify(
        self, image: Image.Image, top_k: int = 5
    ) -> tuple[list[Prediction], dict[str, float]]:
        """Top-k predictions for one image, run here and now (no scheduler), with the time
        each stage took (ms): for tests and benchmarks of the model alone."""
        started = time.perf_counter()
        batch = self.preprocess([image])
        preprocessed = time.perf_counter()
        probabilities = self.forward(batch)
        inferred = time.perf_counter()
        predictions = self.top_k(probabilities, top_k)[0]
        timing = {
            "preprocess_ms": round((preprocessed - started) * 1000, 2),
            "inference_ms": round((inferred - preprocessed) * 1000, 2),
        }
        return predictions, timing
