"""On a GPU: where one block's time goes on the graph path (for tuning the runner).

For each subject (a lone gain, a preset, and each of its stages alone): the host part (``before_block``), the replay alone
(replay + synchronize), ``GraphRunner.run``, ``BlockProcessor.process`` and the same with the next block's host
part written ahead (``ahead``: the live engine's way); p50 / p99 in us.
"""
import sys
import time

import numpy as np
import torch

from rtfx import ProcessSpec, load_preset
from rtfx.graph.runner import GraphRunner
from rtfx.stream import BlockProcessor

SPEC = ProcessSpec(48000, 64, 2, "cuda")


def timed(fn, n=2000, skip=200):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t0)
    ts = np.array(ts[skip:]) / 1e3
    return f"{np.median(ts):6.1f} / {np.percentile(ts, 99):6.1f}"


def row(label, make):
    try:
        runner = GraphRunner(make(), SPEC)

        def replay():
            torch.cuda.set_stream(runner.stream)  # as GraphRunner.run does
            runner.graph.replay()
            runner.stream.synchronize()
        processor = BlockProcessor(make(), SPEC, graph=True)
        early = BlockProcessor(make(), SPEC, graph=True, ahead=True)
        x, out = np.zeros((64, 2), np.float32), np.zeros((64, 2), np.float32)
        print(f"{label:34s} host {timed(lambda: runner.chain.before_block(64))}"
              f" | replay {timed(replay)} | run {timed(lambda: runner.run(64))}"
              f" | process {timed(lambda: processor.process(x, out))}"
              f" | ahead {timed(lambda: early.process(x, out))}", flush=True)
    except Exception as error:
        print(label, "failed:", type(error).__name__, error, flush=True)


torch.set_num_threads(1)
from rtfx import EFFECTS  # noqa: E402

row("gain", lambda: EFFECTS["gain"](gain_db=-3))
for name in sys.argv[1:] or ["guitar_lead"]:
    path = f"assets/presets/{name}.json"
    row(f"preset {name}", lambda: load_preset(path))
    for i, stage in enumerate(load_preset(path).stages):
        row(f"  {i} {stage.type_name}", lambda i=i: load_preset(path).stages[i])
