"""Fold each eval-mode BatchNorm into the convolution before it.

In eval mode a BatchNorm is a fixed per-channel scale and shift, so it can be
multiplied into the preceding convolution's weights and bias once, at load time,
instead of being a separate pass over every activation map at every request.
torch.fx's `fuse` finds the conv -> BatchNorm pairs by tracing the model (no
hand-kept list of layer names per architecture) and folds them with torch's own
`fuse_conv_bn_eval`. The arithmetic stays fp32; only the rounding moves (at most
a few 1e-6 on the probabilities, in the tests and on the bench's ResNet-50).
"""

from __future__ import annotations

import logging

from torch import nn
from torch.fx.experimental.optimization import fuse

from classifier.tracing import symbolic_trace

log = logging.getLogger(__name__)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def count_batch_norms(module: nn.Module) -> int:
    return sum(isinstance(layer, _NORMS) for layer in module.modules())


def fold_batch_norm(module: nn.Module, name: str) -> nn.Module:
    """The module to run from now on: `module` with its BatchNorms folded, or
    `module` itself when it cannot be traced. The argument must not be run any more
    once folded (its convolutions are replaced in place, to avoid a second copy)."""
    if module.training:
        raise ValueError("BatchNorm folding is for eval mode only")
    before = count_batch_norms(module)
    if not before:
        return module
    try:
        traced = symbolic_trace(module)
    except Exception as exc:  # fx cannot trace every model; it then runs unfolded
        log.warning("%s runs with its BatchNorms unfolded: tracing failed (%s)", name, exc)
        return module
    folded = fuse(traced, inplace=True, no_trace=True).eval()
    done = before - count_batch_norms(folded)
    if done:
        log.info("%s: %d of %d BatchNorms folded into convolutions", name, done, before)
    else:  # e.g. convolutions of the model's own Conv2d subclass, which fx traces through
        log.info("%s: no BatchNorm follows a plain convolution; its %d run as they are",
                 name, before)  # fmt: skip
    return folded
