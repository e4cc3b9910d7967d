"""The original kit's design: Flask, a model loaded at import into a global, no inference mode.

Run the way the kit ran it: `gunicorn -w 2 --threads 2 --timeout 600
bench.baselines.original_kit:app` (no preload, so each worker loads its own
copy; torch keeps its default of one intra-op thread per core in every worker).
Only the design is kept; the code is ours. MODEL_NAME and MODEL_WEIGHTS (a
state-dict file) choose the model.
"""

from __future__ import annotations

import io
import os

import torch
import torchvision
from flask import Flask, jsonify, request
from PIL import Image

MODEL_NAME = os.environ.get("MODEL_NAME", "resnet50")
_weights = torchvision.models.get_model_weights(MODEL_NAME).DEFAULT
model = torchvision.models.get_model(MODEL_NAME, weights=None)
model.load_state_dict(torch.load(os.environ["MODEL_WEIGHTS"], weights_only=True))
model.eval()
transform = _weights.transforms()
categories = _weights.meta["categories"]

app = Flask(__name__)


@app.route("/predict", methods=["POST"])
def predict():
    image = Image.open(io.BytesIO(request.files["image"].read())).convert("RGB")
    batch = transform(image).unsqueeze(0)
    # As in the kit: autograd stays on, so every request also records a graph.
    probabilities = model(batch).softmax(dim=1)[0]
    values, indices = probabilities.topk(5)
    predictions = [
        {"label": categories[i], "index": i, "probability": p}
        for p, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]
    return jsonify({"category": predictions[0]["label"], "predictions": predictions})


@app.route("/", methods=["GET"])
def index():
    return "ok"
