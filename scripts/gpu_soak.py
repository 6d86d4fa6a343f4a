"""On a GPU: the live path paced in real time, steady and with knobs turning.

``python scripts/gpu_soak.py [PRESET] [SECONDS] [FRAMES]`` runs ``BlockProcessor`` (one CUDA
graph per block, next block's controls written ahead, as the live engine runs it) on a block clock: each block starts at its slot (frames / rate apart), as a
callback would. First half: nothing moves. Second half: a parameter of every stage that has
one is set to a new value every 10 ms (knob sweeps: coefficient ramps, designs, crossfades).
Prints per-block DSP time p50 / p99 / p99.9 / max and the blocks over the deadline, per half.
"""
import gc
import sys
import time

import numpy as np
import torch

from rtfx import ProcessSpec, load_preset
from rtfx.stream import BlockProcessor


def sweepable(chain) -> list[tuple]:
    """(stage, param) for the first parameter of every stage that has one."""
    return [(stage, stage.params[0]) for stage in chain.stages if stage.params]


def soak(processor, seconds: float, frames: int, rate: int, knobs: list) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((frames * 64, processor.spec.channels))).astype(np.float32)
    out = np.zeros((frames, processor.spec.channels), np.float32)
    period = frames / rate
    blocks = int(seconds / period)
    times = np.zeros(blocks)
    next_knob, start = 0.0, time.perf_counter()
    with torch.inference_mode():
        for i in range(blocks):
            slot = start + i * period
            while time.perf_counter() < slot:
                pass
            if knobs and time.perf_counter() - start >= next_knob:
                for stage, param in knobs:
                    low, high = param.minimum, min(param.maximum, 0.45 * rate) if param.unit == "Hz" else param.maximum
                    stage.set(param.name, float(np.exp(rng.uniform(np.log(max(low, 1e-3)), np.log(high))))
                              if param.scale == "log" else float(rng.uniform(low, high)))
                next_knob += 0.01
            t0 = time.perf_counter()
            processor.process(x[(i % 64) * frames : (i % 64 + 1) * frames], out)
            times[i] = time.perf_counter() - t0
    return times * 1e6


def report(label: str, us: np.ndarray, deadline_us: float) -> None:
    p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
    print(f"{label:10s} blocks {us.size:6d}  p50 {p50:6.0f}  p99 {p99:6.0f}  p99.9 {p999:6.0f}  max {us.max():6.0f} us"
          f"  over the {deadline_us:.0f} us deadline: {int((us > deadline_us).sum())}", flush=True)


def main() -> None:
    preset = sys.argv[1] if len(sys.argv) > 1 else "guitar_lead"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    frames = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    rate = 48000
    torch.set_num_threads(1)
    processor = BlockProcessor(load_preset(f"assets/presets/{preset}.json"), ProcessSpec(rate, frames, 2, "cuda"),
                               ahead=True)
    print(preset, frames, "frames,", processor.path, "|", torch.cuda.get_device_name(), "torch", torch.__version__)
    deadline = frames / rate * 1e6
    gc.collect()  # as the live engine does at start: a collection never walks the chain's objects
    gc.freeze()
    report("steady", soak(processor, seconds / 2, frames, rate, []), deadline)
    report("knobs", soak(processor, seconds / 2, frames, rate, sweepable(processor.chain)), deadline)


if __name__ == "__main__":
    main()
