"""Load a model from a state-dict file without first initialising it at random.

torchvision builds a model by drawing random weights for every layer, which the
state dict then overwrites: for ResNet-50 that drawing is most of the load time.
Built on the "meta" device instead, the layers have shapes but no storage, and
the state dict's own tensors are assigned to them; torch.load maps the file into
memory rather than reading it into a second copy. This cuts cold start.

load_without_init returns None whenever this shortcut does not apply (random
weights, a missing or unfit file, a model that keeps tensors outside its state
dict): the caller then takes classifier.models.load_model's path, which also
produces the error messages.
"""

from __future__ import annotations

import itertools
import logging

import torch

from classifier.models import LoadedModel, WeightsSource, get_spec, ready_for_inference
from webservice import errors

log = logging.getLogger(__name__)


def load_without_init(name: str, source: WeightsSource) -> LoadedModel | None:
    try:
        spec = get_spec(name)
    except errors.UnknownModel:
        return None
    path = source.path_for(spec)
    if path is None or source.missing_reason(spec) is not None:
        return None
    try:
        with torch.device("meta"):
            module = spec.build()
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        module.load_state_dict(state, assign=True)
    except Exception as exc:  # the regular loader reports it properly
        log.info("fast load of %s not possible (%s); loading the regular way", name, exc)
        return None
    tensors = itertools.chain(module.parameters(), module.buffers())
    if any(tensor.is_meta for tensor in tensors):
        return None  # something the state dict does not hold was never materialised
    return ready_for_inference(spec, module, source.origin(spec))
