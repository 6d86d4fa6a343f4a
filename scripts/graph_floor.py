"""On a GPU: what one block costs on the graph path, piece by piece (for tuning the runner).

Prints p50/p99 in microseconds of: a bare graph (H2D copy, one kernel, D2H copy) replayed and
synchronized; GraphRunner.run for a gain and for guitar_lead; BlockProcessor.process for both.
"""
import time

import numpy as np
import torch

from rtfx import EFFECTS, ProcessSpec, load_preset
from rtfx.graph.runner import GraphRunner
from rtfx.stream import BlockProcessor


def timed(fn, n=3000, skip=300):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t0)
    ts = np.array(ts[skip:]) / 1e3
    return f"p50 {np.median(ts):6.1f}  p99 {np.percentile(ts, 99):6.1f} us"


def bare_graph():
    host_in = torch.zeros(2, 64, pin_memory=True)
    host_out = torch.zeros(2, 64, pin_memory=True)
    dev = torch.zeros(2, 64, device="cuda")
    stream = torch.cuda.Stream()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        dev.copy_(host_in, non_blocking=True)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, stream=stream):
            dev.copy_(host_in, non_blocking=True)
            host_out.copy_(dev * 0.5, non_blocking=True)

    def step():
        with torch.cuda.stream(stream):
            graph.replay()
        stream.synchronize()
    return step


torch.set_num_threads(1)
print("bare graph (copy, kernel, copy)", timed(bare_graph()))
for name, make in [("gain", lambda: EFFECTS["gain"](gain_db=-3)),
                   ("guitar_lead", lambda: load_preset("assets/presets/guitar_lead.json"))]:
    try:
        runner = GraphRunner(make(), ProcessSpec(48000, 64, 2, "cuda"))
        print(name, "GraphRunner.run      ", timed(lambda: runner.run(64)))
        print(name, "  before_block only  ", timed(lambda: runner.chain.before_block(64)))
        p = BlockProcessor(make(), ProcessSpec(48000, 64, 2, "cuda"), graph=True)
        x, out = np.zeros((64, 2), np.float32), np.zeros((64, 2), np.float32)
        print(name, "BlockProcessor       ", timed(lambda: p.process(x, out)))
    except Exception as error:
        print(name, "failed:", type(error).__name__, error)
