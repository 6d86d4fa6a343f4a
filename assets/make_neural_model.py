#!/usr/bin/env python3
"""Train rtfx's example neural effect: a tiny causal dilated-convolution net that imitates an
overdrive (high-pass, tanh clipping, tone low-pass) on the bundled guitar DI.

    models/tanh_drive_tcn.pt   TorchScript, ~2.3k parameters, receptive field 255 frames

The target is written with SciPy from the formula in ``overdrive``; the net learns it from the
first 4.5 s of ``audio/guitar_di.wav`` and is checked on the last 1.5 s (held out). Fixed seeds,
one thread, deterministic algorithms: the same file every run. Takes about a minute on one core.

Run: ``.venv/bin/python assets/make_neural_model.py``.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy import signal
from torch import nn
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
OUT = HERE / "models" / "tanh_drive_tcn.pt"
RATE = 48_000
TRAIN_SECONDS = 4.5
STEPS, BATCH, SEGMENT = 1000, 16, 2048


def overdrive(x: np.ndarray) -> np.ndarray:
    """The target: 1st-order 250 Hz high-pass, +26 dB into tanh, 2nd-order 2.5 kHz low-pass."""
    tight = signal.sosfilt(signal.butter(1, 250, "high", fs=RATE, output="sos"), x)
    clipped = np.tanh(20.0 * tight)
    return 0.5 * signal.sosfilt(signal.butter(2, 2500, "low", fs=RATE, output="sos"), clipped)


class CausalConv(nn.Module):
    """A dilated convolution that sees only the present and the past (zero left padding).

    No bias: a zero input gives a zero output, so the padding is the same as silence before
    the start, and streaming from silence equals one pass over the whole signal.
    """

    def __init__(self, width: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.padding = (kernel - 1) * dilation
        self.conv = nn.Conv1d(width, width, kernel, dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (self.padding, 0)))


class TinyTCN(nn.Module):
    """Causal dilated convolutions with tanh and residual connections.

    Shape: ``(batch, 1, frames) -> (batch, 1, frames)``; output frame n depends on input frames
    n - 254 .. n (``receptive_field`` = 255), the frames before the start read as zeros
    (only the output layer has a bias: silence in gives silence through every hidden layer).
    """

    def __init__(self, width: int = 10, dilations=(1, 2, 4, 8, 16, 32, 64), kernel: int = 3) -> None:
        super().__init__()
        self.receptive_field = 1 + (kernel - 1) * sum(dilations)
        self.inp = nn.Conv1d(1, width, 1, bias=False)
        self.layers = nn.ModuleList(CausalConv(width, kernel, d) for d in dilations)
        self.out = nn.Conv1d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for layer in self.layers:
            h = h + torch.tanh(layer(h))
        return self.out(h)


def esr(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Error-to-signal ratio: sum (y - target)^2 / sum target^2."""
    return torch.sum((y - target) ** 2) / torch.sum(target**2)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    x, rate = sf.read(HERE / "audio" / "guitar_di.wav", dtype="float64")
    assert rate == RATE
    target = overdrive(x)
    split = int(TRAIN_SECONDS * RATE)
    x_t, target_t = torch.tensor(x, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)

    model = TinyTCN()
    rf = model.receptive_field
    print(f"TinyTCN: {sum(p.numel() for p in model.parameters())} parameters, receptive field {rf} frames")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, STEPS)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for step in range(1, STEPS + 1):
        starts = rng.integers(0, split - SEGMENT - rf, BATCH)
        inputs = torch.stack([x_t[s : s + SEGMENT + rf] for s in starts])[:, None]
        targets = torch.stack([target_t[s + rf : s + SEGMENT + rf] for s in starts])[:, None]
        loss = esr(model(inputs)[..., rf:], targets)  # skip the zero-padded warm-up frames
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == 1:
            print(f"  step {step:4d}  training ESR {loss.item():.4f}")
    print(f"trained in {time.perf_counter() - started:.0f} s wall, {time.process_time():.0f} s CPU")

    with torch.no_grad():
        y = model(x_t[None, None])[0, 0]
    train_esr, test_esr = esr(y[:split], target_t[:split]).item(), esr(y[split:], target_t[split:]).item()
    print(f"ESR on the training part (0-{TRAIN_SECONDS} s): {train_esr:.4f} ({10 * np.log10(train_esr):.1f} dB)")
    print(f"ESR on the held-out part ({TRAIN_SECONDS} s-end): {test_esr:.4f} ({10 * np.log10(test_esr):.1f} dB)")

    OUT.parent.mkdir(exist_ok=True)
    torch.jit.save(torch.jit.script(model.eval()), OUT)
    print(f"-> {OUT.relative_to(HERE.parent)}: {OUT.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
