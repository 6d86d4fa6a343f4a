"""Triton where it is installed: what the fused (one kernel per block) paths share.

The CPU wheels of torch come without Triton; the CUDA wheels bring it. ``available(device)`` says
whether the fused kernels serve a device. On GPUs that have it (compute capability 9: Hopper and
later), each fused kernel is launched as a programmatic dependent of the kernel before it
(``chained``): the GPU schedules it while its predecessor still runs, and it waits for that one
to finish at its first line (``follow``). In a graph of dependent kernels that hides most of the
gap between two launches (an H100, 20 tiny kernels: 53 -> 32 us a replay). ``larger`` and
``first_order`` run recursions over a block's frames as ``tl.associative_scan``s (running maxima,
first-order recursions): ~log2(frames) steps across the threads rather than one frame after
another. Tests run the kernels on a GPU, or on the CPU under ``TRITON_INTERPRET=1`` (Triton's
interpreter).
"""
from __future__ import annotations

import functools

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None
try:
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # no Triton, or one without programmatic dependent launch
    gdc_launch_dependents = gdc_wait = None


def given(tensor: torch.Tensor | None, stand_in: torch.Tensor) -> torch.Tensor:
    """``tensor``, or ``stand_in`` where there is none: a pointer argument that the kernel does
    not read (its flag is off)."""
    return stand_in if tensor is None else tensor


def available(device) -> bool:
    """Whether the fused kernels can run on ``device`` (a CUDA device, with Triton)."""
    return triton is not None and torch.device(device).type == "cuda"


def chained(tensor: torch.Tensor) -> dict:
    """The launch options of a fused kernel working on ``tensor``: ``PDL`` for the kernel's
    ``follow`` and, where the GPU has programmatic dependent launch, ``launch_pdl``."""
    on = gdc_wait is not None and tensor.is_cuda and _dependent_launch(tensor.device.index)
    return {"PDL": True, "launch_pdl": True} if on else {"PDL": False}


@functools.lru_cache
def _dependent_launch(index: int) -> bool:
    return torch.cuda.get_device_capability(index)[0] >= 9


if triton is not None:
    @triton.jit
    def follow(PDL: tl.constexpr):
        """A fused kernel's first line: with ``PDL``, let the next kernel be scheduled, then
        wait until the kernel before this one has finished (its writes visible)."""
        if PDL:
            gdc_launch_dependents()
            gdc_wait()

    @triton.jit
    def larger(a, b):
        """The combining step of a running maximum (``tl.associative_scan``)."""
        return tl.maximum(a, b)

    @triton.jit
    def _then(scale_a, shift_a, scale_b, shift_b):
        """The combining step of a scan over affine maps ``y -> scale * y + shift``: a, then b."""
        return scale_a * scale_b, scale_b * shift_a + shift_b

    @triton.jit
    def first_order(scale, shift, inside, start, AXIS: tl.constexpr):
        """``y[n] = scale[n] y[n-1] + shift[n]`` along ``AXIS`` from ``y[-1] = start`` (broadcast
        against the tile), as a scan of composed affine maps; where ``inside`` is false the map
        is the identity (``y`` keeps its value). Returns ``y``."""
        scales, shifts = tl.associative_scan((tl.where(inside, scale, 1.0), tl.where(inside, shift, 0.0)), AXIS, _then)
        return scales * start + shifts
else:  # without Triton no kernel is defined to call these
    follow = larger = first_order = None
