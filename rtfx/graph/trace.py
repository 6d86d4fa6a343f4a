"""Checks on the CPU that a block's kernels could be replayed from one CUDA graph.

A CUDA graph records kernels with their arguments once and replays exactly those: the same
ops, the same scalar arguments, the same buffers. So an effect's ``run_block`` may be captured
only if every block issues the same op sequence, passes no Python number that changes from
block to block (it would be frozen into the graph), reads and writes the same persistent
buffers (no ping-pong, no tensors made from numpy per block) and never reads a value back to
the host (``.item()``). ``BlockTrace`` records the ops of one block under a
``TorchDispatchMode``; ``first_difference`` names the first op where two blocks differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

#: Ops that copy a device value to the host: a graph cannot contain them.
HOST_READS = {"aten::_local_scalar_dense", "aten::item", "aten::is_nonzero", "aten::equal"}


@dataclass
class BlockTrace(TorchDispatchMode):
    """The ops of one block: name, scalar arguments and the buffers they touch.

    A tensor argument is described by shape, stride, dtype and where its storage comes from:
    ``("new", i)`` for a storage first made by op ``i`` of this block (an intermediate: a graph
    gives it the same address on every replay), ``("buffer", address, offset)`` for one that
    existed before the block (a persistent buffer, whose address must not change).
    """

    ops: list = field(default_factory=list)
    host_reads: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._made: dict[int, int] = {}  # storage address -> index of the op that made it

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        index = len(self.ops)
        name = func._schema.name
        if name in HOST_READS:
            self.host_reads.append(index)
        described = (str(func), self._describe(args), self._describe(kwargs))
        inputs = {t.untyped_storage().data_ptr() for t in _tensors((args, tuple(kwargs.values())))}
        out = func(*args, **kwargs)
        for tensor in _tensors(out):
            address = tensor.untyped_storage().data_ptr()
            if address not in inputs:  # a fresh allocation (views and out= share an input's)
                self._made[address] = index
        self.ops.append(described)
        return out

    def _describe(self, value):
        if isinstance(value, torch.Tensor):
            address = value.untyped_storage().data_ptr()
            origin = ("new", self._made[address]) if address in self._made else ("buffer", address, value.storage_offset())
            return ("tensor", tuple(value.shape), value.stride(), str(value.dtype), origin)
        if isinstance(value, (list, tuple)):
            return tuple(self._describe(v) for v in value)
        if isinstance(value, dict):
            return tuple((k, self._describe(v)) for k, v in sorted(value.items()))
        return value


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


def trace_block(run, *args) -> BlockTrace:
    """Run ``run(*args)`` under a ``BlockTrace`` and return the trace."""
    trace = BlockTrace()
    with trace:
        run(*args)
    return trace


def first_difference(reference: BlockTrace, trace: BlockTrace) -> str:
    """Why ``trace`` could not replay from a graph captured as ``reference`` ("" if it could)."""
    if trace.host_reads:
        return f"op {trace.host_reads[0]} ({trace.ops[trace.host_reads[0]][0]}) reads a device value on the host"
    for index, (old, new) in enumerate(zip(reference.ops, trace.ops)):
        if old != new:
            return f"op {index} {new[0]} differs: {_argument_difference(old, new)}"
    if len(reference.ops) != len(trace.ops):
        return f"the block ran {len(trace.ops)} ops, the captured one {len(reference.ops)}"
    return ""


def _argument_difference(old, new) -> str:
    if old[0] != new[0]:
        return f"the captured block ran {old[0]} here"
    for where, (a, b) in (("argument", pair) for pair in zip(old[1] + old[2], new[1] + new[2])):
        if a != b:
            return f"{where} {_show(a)} became {_show(b)}" + _hint(a, b)
    return "its arguments changed"


def _show(value) -> str:
    if isinstance(value, tuple) and value and value[0] == "tensor":
        return f"tensor{list(value[1])} ({value[4][0]})"
    return repr(value)


def _hint(a, b) -> str:
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return " (a Python number: keep it in a device tensor)"
    if isinstance(a, tuple) and isinstance(b, tuple) and a and a[0] == b[0] == "tensor" and a[4][0] == b[4][0] == "buffer":
        return " (another buffer: keep persistent tensors in place)"
    return ""
