"""Values the host writes before a block and the block's kernels read on the device.

A kernel that reads a Python number freezes it into a CUDA graph; one that reads a
``Control`` reads whatever the host wrote before the block. The host writes ``values`` (a
numpy view) and calls ``commit``; kernels read ``tensor``. On the CPU both are the same memory.
On CUDA a lone control copies itself to the device on ``commit``; ``ControlBank`` packs all
controls of a chain into one host buffer (staged into pinned memory) and one device buffer, so a
graph runner moves every control (and the input block) with one copy per block.
"""
from __future__ import annotations

import numpy as np
import torch

#: Byte alignment of each control inside a bank (the widest dtype used).
ALIGN = 8


class Control:
    """A host-written tensor of ``shape`` read by kernels on ``device``.

    Attributes:
        values: writable numpy view of the host copy.
        tensor: the device tensor kernels read (never replaced while a graph holds it).
    """

    def __init__(self, shape, device, dtype=torch.float32) -> None:
        self.shape, self.dtype = tuple(np.atleast_1d(shape)), dtype
        self.host = torch.zeros(self.shape, dtype=dtype)
        self.tensor = self.host if torch.device(device).type == "cpu" else torch.zeros_like(self.host, device=device)
        self.values = self.host.numpy()
        self.packed = False

    def set(self, values) -> None:
        """Write ``values`` (broadcast to the shape) and commit."""
        self.values[...] = values
        self.commit()

    def commit(self) -> None:
        """Make the written values visible to the kernels (a packed bank uploads them itself)."""
        if not self.packed and self.tensor is not self.host:
            self.tensor.copy_(self.host)  # pageable source: the host may rewrite it at once


class LinearRamp:
    """Per-sample values moving linearly across a block, as a ``(frames,)`` control.

    ``set(start, end, frames)`` writes the values just after ``start`` up to ``end``; kernels
    read ``tensor[:frames]``. Unchanged values are not rewritten.
    """

    def __init__(self, blocksize: int, device) -> None:
        self.control = Control(blocksize, device)
        self._fractions = np.arange(1, blocksize + 1, dtype=np.float64)
        self._written = None

    @property
    def tensor(self) -> torch.Tensor:
        return self.control.tensor

    def set(self, start: float, end: float, frames: int) -> None:
        key = (start, end, frames) if start != end else (end, end, None)
        if key == self._written:
            return
        values = self.control.values
        if start == end:
            values[:] = end
        else:
            np.multiply(self._fractions[:frames], (end - start) / frames, out=values[:frames], casting="unsafe")
            values[:frames] += start
        self.control.commit()
        self._written = key

    def __call__(self, start: float, end: float, frames: int) -> torch.Tensor:
        """``set`` and return the ``(frames,)`` device view (for host code inside a kernel)."""
        self.set(start, end, frames)
        return self.tensor[:frames]


def find_controls(root) -> list[Control]:
    """Every ``Control`` reachable from ``root`` through attributes, lists, tuples and dicts."""
    found, seen, todo = [], set(), [root]
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, (torch.Tensor, np.ndarray, str, bytes, int, float, type)):
            continue
        seen.add(id(item))
        if isinstance(item, Control):
            found.append(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            todo.extend(item)
        elif hasattr(item, "__dict__") and type(item).__module__.startswith("rtfx"):
            todo.extend(vars(item).values())
    return found


class ControlBank:
    """Controls packed into one host buffer, a pinned copy of it and one device buffer.

    After packing, each control's ``values``/``tensor`` are views of the bank (current values
    kept) and ``commit`` does nothing. Per block, ``stage`` copies what the host wrote into the
    pinned buffer (``pinned``) and ``upload`` copies that to the device: the host may write the
    next block's controls while the GPU still reads this one's.
    """

    def __init__(self, controls: list[Control], device) -> None:
        self._offsets, size = {}, 0
        for control in controls:
            self._offsets[id(control)] = size
            size += -(-control.host.numel() * control.host.element_size() // ALIGN) * ALIGN
        self.host = torch.zeros(max(size, ALIGN), dtype=torch.uint8)
        self.pinned = torch.zeros_like(self.host, pin_memory=True)
        self.device = torch.zeros_like(self.host, device=device)
        self._host, self._pinned = self.host.numpy(), self.pinned.numpy()
        for control in controls:
            host = self.view(self.host, control)
            host.copy_(control.host)
            control.host, control.values = host, host.numpy()
            control.tensor = self.view(self.device, control)
            control.packed = True
        self.stage()
        self.upload()

    def view(self, buffer: torch.Tensor, control: Control) -> torch.Tensor:
        """``control``'s place in ``buffer`` (``host``, ``pinned`` or ``device``)."""
        offset = self._offsets[id(control)]
        nbytes = control.host.numel() * control.host.element_size()
        return buffer[offset : offset + nbytes].view(control.dtype).view(control.shape)

    def stage(self) -> None:
        """Copy the host's writes into the pinned buffer (a memcpy of a few KB)."""
        np.copyto(self._pinned, self._host)

    def upload(self) -> None:
        """One host-to-device copy of the pinned buffer (stream-ordered, asynchronous)."""
        self.device.copy_(self.pinned, non_blocking=True)
