"""The latency benchmark harness on a tiny grid: files written, every implementation timed,
errors computed and small. Timings are not asserted (this is no timed test)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latency_bench import cells as C
from latency_bench import run
from latency_bench.__main__ import main
from latency_bench.timing import Impl, measure, stats_us

TINY = [
    C.Cell("iir", 32, 2, direct_torch=True, peer_blocks={"torch-df2t": 3}),
    C.Cell("iir", 48, 3),                 # not a power of two: the remainder path of SosFilter
    C.Cell("fir", 32, 2, 64),
    C.Cell("fir", 64, 2, 3000),           # long enough for a partitioned convolver
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    doc, jpath, mpath = run(TINY, ["cpu"], blocks=12, warmup=2, out_dir=out, signal_seconds=0.1)
    return doc, jpath, mpath


def test_files_written(bench):
    doc, jpath, mpath = bench
    assert jpath.name == "core.json" and mpath.name == "core.md"
    loaded = json.loads(jpath.read_text())
    assert loaded["schema"] == doc["schema"]
    for key in ("cpu", "cores", "torch", "scipy", "numpy", "date"):
        assert loaded["machine"][key] not in (None, "")
    assert [c["id"] for c in loaded["cells"]] == [c.id for c in TINY]
    md = mpath.read_text()
    assert "| cell |" in md and "sosfilt" in md and "lfilter" in md
    assert "torch-df2t: timed over 3 blocks" in md   # the cap is said, not hidden


def test_every_implementation_timed_and_accurate(bench):
    doc = bench[0]
    expected = {"iir": {"rtfx-cpu", "sosfilt", "lfilter-cascade"}, "fir": {"rtfx-cpu", "lfilter"}}
    for cell, spec in zip(doc["cells"], TINY):
        names = set(cell["impls"])
        assert expected[cell["kind"]] <= names
        assert ("torch-df2t" in names) == spec.direct_torch
        assert cell["deadline_us"] == pytest.approx(spec.frames / 48000 * 1e6)
        for name, e in cell["impls"].items():
            assert e["n"] == (spec.peer_blocks.get(name) or 12), name
            assert 0 < e["p50_us"] <= e["p99_us"] <= e["max_us"], name
            assert isinstance(e["meets_deadline_p99"], bool)
            limit = 1e-12 if name in ("sosfilt", "lfilter-cascade", "lfilter") else 1e-4
            assert e["max_rel_err"] < limit, (cell["id"], name, e["max_rel_err"])
            assert e["err_frames"] > 0
        rtfx = cell["impls"]["rtfx-cpu"]
        assert rtfx["err_frames"] == cell["signal_frames"]   # rtfx checked on the whole signal
        for peer, ratio in cell["speedup"]["rtfx-cpu"].items():
            p = cell["impls"][peer]
            assert ratio["p50"] == pytest.approx(p["p50_us"] / rtfx["p50_us"])
            assert ratio["p99"] == pytest.approx(p["p99_us"] / rtfx["p99_us"])


def test_measure_interleaves_and_records_first_pass():
    calls = []

    def impl(name, blocks=None):
        def step(i):
            calls.append((name, i))
            return np.full((1, 2), float(i))
        return Impl(name, "peer", "cpu", step, lambda: None, lambda y: y.copy(), blocks)

    res = measure([impl("a"), impl("b", blocks=2)], blocks=4, warmup=1, signal_blocks=3)
    assert len(res["a"].wall_ns) == 4 and len(res["b"].wall_ns) == 2
    assert [i for n, i in calls if n == "a"] == [0, 1, 2, 0, 1]      # cycles over the signal
    assert [n for n, _ in calls[:4]] == ["a", "b", "b", "a"]           # order rotates per round
    assert len(res["a"].outputs) == 3 and len(res["b"].outputs) == 3  # first pass only
    s = stats_us(np.array([1000, 2000, 3000]))
    assert s["p50_us"] == 2.0 and s["max_us"] == 3.0


def test_cli_quick_arguments(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "quick_grid", lambda: TINY[:1])
    assert main(["--quick", "--dsp", "cpu", "--blocks", "5", "--warmup", "1", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "core.json").read_text())
    assert doc["settings"]["blocks"] == 5 and doc["cells"][0]["impls"]["rtfx-cpu"]["n"] == 5


def test_plots_from_synthetic_core_json(tmp_path):
    pytest.importorskip("matplotlib")
    from latency_bench.plots import main as plots_main

    def entry(p50, n=10):
        return {"n": n, "p50_us": p50, "p99_us": p50 * 2, "max_us": p50 * 3}

    cells = []
    for frames in (64, 256):
        deadline = frames / 48000 * 1e6
        for ch in (2, 64):
            cells.append({"kind": "iir", "frames": frames, "channels": ch, "taps": None,
                          "deadline_us": deadline, "samplerate": 48000,
                          "impls": {"rtfx-cpu": entry(20.0 * ch), "rtfx-cuda": entry(150.0),
                                    "sosfilt": entry(50.0 * ch), "lfilter-cascade": entry(40.0 * ch)}})
        for taps in (512, 96000):
            cells.append({"kind": "fir", "frames": frames, "channels": 2, "taps": taps,
                          "deadline_us": deadline, "samplerate": 48000,
                          "impls": {"rtfx-cpu": entry(30.0), "lfilter": entry(taps / 10, n=3)},
                          "speedup": {"rtfx-cpu": {"lfilter": {"p50": taps / 300}}}})
    doc = {"machine": {"cpu": "Test CPU", "cores": 1, "torch": "x", "scipy": "y", "gpu": None},
           "settings": {"machine_name": "test-machine", "devices": ["cpu", "cuda"], "blocks": 10,
                        "torch_threads": 1},
           "cells": cells}
    jpath = tmp_path / "core.json"
    jpath.write_text(json.dumps(doc))
    assert plots_main([str(jpath)]) == 0
    for name in ("iir_latency.png", "convolution_latency.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
