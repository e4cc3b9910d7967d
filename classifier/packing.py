"""Run convolutions on weights packed once into oneDNN's layout, with their ReLU fused.

An eager Conv2d hands oneDNN plain (NHWC or NCHW) weights, which oneDNN
reorders into its own blocked layout on every call, and the ReLU after each
convolution (and the residual add before it) is one more pass over the
activations. Here each convolution's weights are reordered once and called
through the same oneDNN ops torch.compile emits on CPU
(`mkldnn._convolution_pointwise`, ReLU and the residual add as post-ops),
without compiling anything: no C++ compiler at run time, no compile on cold
start. The arithmetic is unchanged (fp32, the same kernels); the tests compare
every output with the unpacked model's. These ops are torch-internal: torch is
pinned, a torch or CPU without them makes the model run unpacked (with a
warning), and the tests would show a changed meaning on upgrade.

oneDNN picks the packed layout for the batch size and the thread count it is
packed under, and a layout packed for one runs slowly under another (a lone
image on a layout packed for batches was slower than unpacked). So the weights
are packed once for each PackedFor (the thread count and, on several threads,
a lone image or a batch), lazily, by the first pass run that way, on the
calling thread and its own thread count. Batches of different sizes ran alike
on any batch packing, and on one thread every packing ran every batch size
alike, so one thread has one packing. The performance notes have the measurements.
"""

from __future__ import annotations

import copy
import logging
import operator
import threading
from typing import NamedTuple

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from classifier.tracing import symbolic_trace

log = logging.getLogger(__name__)
_ADDS = (operator.add, operator.iadd, torch.add)


def _reorder(weight: torch.Tensor, *geometry, input_size: list[int]) -> torch.Tensor:
    # Looked up at call time: a torch build without the op fails here, inside the
    # fallback, not at import.
    return torch.ops.mkldnn._reorder_convolution_weight(weight, *geometry, input_size)


class PackedConv2d(nn.Module):
    """One Conv2d on packed weights, with an optional fused ReLU."""

    def __init__(self, conv: nn.Conv2d, input_size: list[int], relu: bool) -> None:
        super().__init__()
        self.geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self.weight = _reorder(conv.weight.detach(), *self.geometry, input_size=input_size)
        self.bias = None if conv.bias is None else conv.bias.detach()
        self.unary = "relu" if relu else "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, *self.geometry, self.unary, [], ""
        )


class PackedConv2dAddReLU(PackedConv2d):
    """relu(conv(x) + residual): a residual block's last convolution, add and ReLU in one op."""

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, residual, self.weight, self.bias, *self.geometry, "add", 1.0, self.unary, [], ""
        )


class PackedFor(NamedTuple):
    """What a packing was made for: the pass's thread count and, on several threads,
    whether it runs a lone image (one thread has a single packing for every batch)."""

    threads: int
    lone_image: bool

    @classmethod
    def this_pass(cls, batch: torch.Tensor) -> PackedFor:
        threads = torch.get_num_threads()
        return cls(threads, threads > 1 and batch.shape[0] == 1)

    def describe(self) -> str:
        what = "lone images" if self.lone_image else "batches" if self.threads > 1 else "any batch"
        return f"{what} on {self.threads} thread(s)"


class PrepackedModel(nn.Module):
    """`module` (an fx graph) run on a packed copy of its convolutions per PackedFor."""

    def __init__(self, module: fx.GraphModule, name: str) -> None:
        super().__init__()
        self.module = module
        self.name = name
        self._variants: dict[PackedFor, nn.Module] = {}
        self._lock = threading.Lock()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed_for = PackedFor.this_pass(x)
        variant = self._variants.get(packed_for)
        if variant is None:
            return self._pack(packed_for, x)
        return variant(x)

    def _pack(self, packed_for: PackedFor, x: torch.Tensor) -> torch.Tensor:
        """Pack for `packed_for` on its first pass, and answer that pass."""
        with self._lock:  # two engines may meet the same new PackedFor at once
            variant = self._variants.get(packed_for)
            if variant is None:
                self._variants[packed_for], answer = self._packed_copy(x)
                log.info("%s: convolutions packed for %s", self.name, packed_for.describe())
                return answer
        return variant(x)

    def _packed_copy(self, example: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
        """The module to run from now on for this PackedFor, and its answer for `example`:
        the packed copy if it gives the unpacked answer, else the unpacked module."""
        # A new GraphModule over the same leaf modules: replacing a convolution in it
        # leaves self.module, and so every other variant, as it was.
        graph = fx.GraphModule(self.module, copy.deepcopy(self.module.graph))
        expected = None
        try:
            with torch.no_grad():
                expected = ShapeProp(graph).propagate(example)  # the unpacked answer
                packed = _pack_convolutions(graph)
                got = packed(example)
        except Exception as exc:  # an op this torch or CPU lacks: run unpacked, correctly
            log.warning("%s runs its convolutions unpacked: packing failed (%s)", self.name, exc)
            return self.module, self.module(example) if expected is None else expected
        if not torch.allclose(got, expected, rtol=1e-3, atol=1e-3):
            log.warning(
                "%s runs its convolutions unpacked: packed outputs differ by up to %.3g",
                self.name, (got - expected).abs().max().item(),
            )  # fmt: skip
            return self.module, expected
        return packed, got


def prepack(module: nn.Module, name: str) -> nn.Module:
    """The module to run from now on: a PrepackedModel over `module`, or `module`
    itself when nothing can be packed (no oneDNN, not traceable, no plain Conv2d)."""
    if not torch.backends.mkldnn.is_available():
        log.info("%s runs unpacked: this torch has no oneDNN", name)
        return module
    if not any(type(layer) is nn.Conv2d for layer in module.modules()):
        # e.g. a model with its own Conv2d subclass, which fx traces through
        log.info("%s: no plain Conv2d to pack; its convolutions run as they are", name)
        return module
    if not isinstance(module, fx.GraphModule):
        try:
            module = symbolic_trace(module)
        except Exception as exc:
            log.warning("%s runs unpacked: tracing failed (%s)", name, exc)
            return module
    return PrepackedModel(module, name)


def _pack_convolutions(graph: fx.GraphModule) -> fx.GraphModule:
    """Replace every plain Conv2d node (shapes already propagated) with a packed one."""
    for node in list(graph.graph.nodes):
        conv = _plain_conv(graph, node)
        if conv is None:
            continue
        input_size = list(node.args[0].meta["tensor_meta"].shape)
        user = next(iter(node.users)) if len(node.users) == 1 else None
        if user is not None and _is_relu(graph, user):
            graph.add_submodule(node.target, PackedConv2d(conv, input_size, relu=True))
            user.replace_all_uses_with(node)
            graph.graph.erase_node(user)
        elif user is not None and (residual := _residual_before_relu(graph, node, user)):
            (relu,) = user.users
            graph.add_submodule(node.target, PackedConv2dAddReLU(conv, input_size, relu=True))
            node.args = (node.args[0], residual)
            user.prepend(node)  # the residual may be computed after the convolution
            relu.replace_all_uses_with(node)
            graph.graph.erase_node(relu)
            graph.graph.erase_node(user)
        else:
            graph.add_submodule(node.target, PackedConv2d(conv, input_size, relu=False))
    graph.graph.lint()
    graph.recompile()
    return graph


def _plain_conv(graph: fx.GraphModule, node: fx.Node) -> nn.Conv2d | None:
    if node.op != "call_module" or len(node.args) != 1 or node.kwargs:
        return None
    (source,) = node.args
    if not isinstance(node.target, str) or not isinstance(source, fx.Node):
        return None
    conv = graph.get_submodule(node.target)
    if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return None
    if conv.weight.dtype != torch.float32:
        return None
    meta = source.meta.get("tensor_meta")
    if meta is None or len(meta.shape) != 4 or meta.dtype != torch.float32:
        return None
    return conv


def _is_relu(graph: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module" and isinstance(node.target, str):
        return type(graph.get_submodule(node.target)) is nn.ReLU
    return node.op == "call_function" and node.target in (torch.relu, nn.functional.relu)


def _residual_before_relu(graph: fx.GraphModule, conv: fx.Node, add: fx.Node) -> fx.Node | None:
    """The other operand of `conv + residual` when a ReLU alone takes the sum, else None."""
    if add.op != "call_function" or add.target not in _ADDS or add.kwargs or len(add.args) != 2:
        return None
    if len(add.users) != 1 or not _is_relu(graph, next(iter(add.users))):
        return None
    residual = add.args[1] if add.args[0] is conv else add.args[0]
    if not isinstance(residual, fx.Node) or residual is conv:
        return None
    conv_meta, residual_meta = (n.meta.get("tensor_meta") for n in (conv, residual))
    if conv_meta is None or residual_meta is None or conv_meta.shape != residual_meta.shape:
        return None  # a broadcast add is not what the fused op computes
    return residual
