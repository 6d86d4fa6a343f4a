"""Triton where it is installed: what the fused (one kernel per block) paths share.

The CPU wheels of torch come without Triton; the CUDA wheels bring it. ``available(device)`` says
whether the fused kernels serve a device. Tests run them on a GPU, or on the CPU under
``TRITON_INTERPRET=1`` (Triton's interpreter).
"""
from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = tl = None


def given(tensor: torch.Tensor | None, stand_in: torch.Tensor) -> torch.Tensor:
    """``tensor``, or ``stand_in`` where there is none: a pointer argument that the kernel does
    not read (its flag is off)."""
    return stand_in if tensor is None else tensor


def available(device) -> bool:
    """Whether the fused kernels can run on ``device`` (a CUDA device, with Triton)."""
    return triton is not None and torch.device(device).type == "cuda"
