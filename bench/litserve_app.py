"""LitServe serving the same model, with its documented CPU settings.

python -m bench.litserve_app --model resnet50 --weights W --port P [--max-batch 4]
One inference worker per core (workers_per_device), each with an even share of
the cores as torch threads; batching is LitServe's own (max_batch_size,
batch_timeout), off when --max-batch is 1.
"""

from __future__ import annotations

import argparse
import io
import os

import litserve as ls
import torch
import torchvision
from PIL import Image


class ImageClassifierAPI(ls.LitAPI):
    def __init__(self, model: str, weights: str, threads: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model_name = model
        self.weights_path = weights
        self.threads = threads

    def setup(self, device):
        torch.set_num_threads(self.threads)
        weights = torchvision.models.get_model_weights(self.model_name).DEFAULT
        self.transform = weights.transforms()
        self.categories = weights.meta["categories"]
        self.model = torchvision.models.get_model(self.model_name, weights=None)
        self.model.load_state_dict(torch.load(self.weights_path, weights_only=True))
        self.model.eval()

    def decode_request(self, request):
        data = request["image"].file.read()
        return self.transform(Image.open(io.BytesIO(data)).convert("RGB"))

    def batch(self, inputs):
        return torch.stack(inputs)

    def predict(self, x):
        if x.dim() == 3:  # unbatched: one image
            x = x.unsqueeze(0)
        with torch.inference_mode():
            values, indices = self.model(x).softmax(dim=-1).topk(5)
        return list(zip(values.tolist(), indices.tolist(), strict=True))

    def unbatch(self, output):
        return output

    def encode_response(self, output):
        if self.max_batch_size == 1:
            (output,) = output
        values, indices = output
        predictions = [
            {"label": self.categories[i], "index": i, "probability": p}
            for p, i in zip(values, indices, strict=True)
        ]
        return {"category": predictions[0]["label"], "predictions": predictions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--batch-timeout", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    batching = args.max_batch > 1
    api = ImageClassifierAPI(
        args.model,
        args.weights,
        threads=max(1, cores // args.workers),
        max_batch_size=args.max_batch,
        batch_timeout=args.batch_timeout if batching else 0.0,
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=args.workers, timeout=120)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
