"""The latency benchmark harness on a tiny grid: every implementation timed (or reported with
its reason), errors computed and small, core.json / core.md / PNGs written. Timings are not
asserted (this is no timed test)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latency_bench import cells as C
from latency_bench import offline, peers, presets, run, runner
from latency_bench.__main__ import main
from latency_bench.timing import Impl, Unavailable, measure, stats_us

PRESET = "assets/presets/guitar_demo.json"
TINY = [
    C.Cell("iir", 32, 2, direct_torch=True, peer_blocks={"torch-df2t": 3}, sweep="frames"),
    C.Cell("iir", 64, 2),
    C.Cell("iir", 48, 3, design="ellip", order=4),   # not a power of two: SosFilter's remainder path
    C.Cell("fir", 32, 2, taps=64),
    C.Cell("ir", 64, 2, taps=3000),                  # long enough for a partitioned convolver
    C.Cell("preset", 64, 2, preset=PRESET),
]
OK_STATUSES = {"ok", "missing", "failed", "n/a", "not yet"}
SCIPY = {"sosfilt", "lfilter-cascade", "lfilter", "scipy-chain"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return run(TINY, ["cpu"], blocks=12, warmup=2, out_dir=out, signal_seconds=0.1,
               offline_grid=None)


def test_files_written(bench):
    doc, jpath, mpath = bench
    assert jpath.name == "core.json" and mpath.name == "core.md"
    loaded = json.loads(jpath.read_text())
    assert loaded["schema"] == doc["schema"]
    for key in ("cpu", "cores", "torch", "scipy", "numpy", "date", "peers"):
        assert loaded["machine"][key] not in (None, "")
    assert [c["id"] for c in loaded["cells"]] == [c.id for c in TINY]
    md = mpath.read_text()
    assert "| cell |" in md and "sosfilt" in md and "lfilter" in md and "scipy-chain" in md
    assert "## Deadlines" in md and "## Cells run" in md


def test_every_implementation_timed_or_explained(bench):
    doc = bench[0]
    expected = {"iir": {"rtfx-cpu", "sosfilt", "lfilter-cascade", "torchfx-cpu", "torchaudio-cpu", "pedalboard"},
                "fir": {"rtfx-cpu", "lfilter", "torchfx-cpu", "torchaudio-cpu", "pedalboard"},
                "ir": {"rtfx-cpu", "lfilter", "torchfx-cpu", "torchaudio-cpu", "pedalboard"},
                "preset": {"rtfx-cpu", "scipy-chain", "torchfx-cpu", "torchaudio-cpu", "pedalboard"}}
    for cell, spec in zip(doc["cells"], TINY):
        names = set(cell["impls"])
        assert expected[cell["kind"]] <= names, cell["id"]
        assert ("torch-df2t" in names) == spec.direct_torch
        assert cell["deadline_us"] == pytest.approx(spec.frames / 48000 * 1e6)
        for name, e in cell["impls"].items():
            assert e["status"] in OK_STATUSES, (cell["id"], name)
            if e["status"] != "ok":
                assert e["reason"], (cell["id"], name)   # never silently dropped
                continue
            assert e["n"] == (spec.peer_blocks.get(name) or 12), name
            assert 0 < e["p50_us"] <= e["p99_us"] <= e["max_us"], name
            assert isinstance(e["meets_deadline_p99"], bool)
            assert e["max_rel_err"] is not None and e["err_frames"] > 0, (cell["id"], name)
            if name in SCIPY:
                assert e["max_rel_err"] < 1e-12, (cell["id"], name, e["max_rel_err"])
            elif name.startswith("rtfx") or name == "torch-df2t":
                assert e["max_rel_err"] < 1e-4, (cell["id"], name, e["max_rel_err"])
        rtfx = cell["impls"]["rtfx-cpu"]
        assert rtfx["status"] == "ok" and rtfx["err_frames"] == cell["signal_frames"]
        for peer, ratio in cell["speedup"]["rtfx-cpu"].items():
            p = cell["impls"][peer]
            assert ratio["p50"] == pytest.approx(p["p50_us"] / rtfx["p50_us"])
            assert ratio["p99"] == pytest.approx(p["p99_us"] / rtfx["p99_us"])


def test_plots_written(bench, tmp_path):
    pytest.importorskip("matplotlib")
    from latency_bench.plots import plot_file
    doc, jpath, _ = bench
    written = plot_file(jpath, tmp_path)
    assert {p.name for p in written} >= {"latency_vs_block.png", "latency_vs_length.png"}
    for p in written:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, p


def test_missing_and_failing_peers_are_reported(monkeypatch, tmp_path):
    def no_module(name):
        return None, f"not installed (test: no {name})"
    monkeypatch.setattr(peers, "optional_module", no_module)

    class Boom:
        def __init__(self, *args):
            pass

        def step(self, i):
            raise RuntimeError("kaputt")

        def reset(self):
            pass

        to_numpy = staticmethod(np.asarray)

    monkeypatch.setattr(peers, "SosfiltPeer", Boom)
    doc, _, mpath = run([TINY[0]], ["cpu"], blocks=5, warmup=1, out_dir=tmp_path, signal_seconds=0.05)
    impls = doc["cells"][0]["impls"]
    assert impls["torchfx-cpu"]["status"] == "missing" and "test: no torchfx" in impls["torchfx-cpu"]["reason"]
    assert impls["sosfilt"]["status"] == "failed" and "kaputt" in impls["sosfilt"]["reason"]
    assert impls["lfilter-cascade"]["status"] == "ok"
    md = mpath.read_text()
    assert "**torchfx-cpu** missing" in md and "**sosfilt** failed" in md and "kaputt" in md


def test_preset_without_scipy_model_is_said(monkeypatch):
    def unknown(stage):
        raise presets.NoScipyModel(f"stage {stage.type_name!r} has no SciPy model")
    monkeypatch.setattr(presets, "_stage_models", unknown)
    presets.chain_model.cache_clear()
    try:
        rec = runner.run_cell(C.Cell("preset", 64, 2, preset=PRESET), ["cpu"], 4, 1, signal_seconds=0.05)
    finally:
        presets.chain_model.cache_clear()
    assert rec["reference"].startswith("none")
    assert rec["impls"]["scipy-chain"]["status"] == "n/a"
    assert rec["impls"]["rtfx-cpu"]["status"] == "ok" and rec["impls"]["rtfx-cpu"]["max_rel_err"] is None


def test_preset_that_does_not_load_is_reported(tmp_path, monkeypatch):
    bad = tmp_path / "broken.json"
    bad.write_text('{"format": "rtfx-preset", "version": 1, "chain": [{"type": "no_such_effect"}]}')
    monkeypatch.setattr(C, "PRESET_DIR", tmp_path / "assets" / "presets")
    cell = C.Cell("preset", 64, 2, preset=str(bad))
    rec = runner.run_cell(cell, ["cpu"], 4, 1, signal_seconds=0.05)
    assert rec["impls"]["rtfx-cpu"]["status"] == "failed" and rec["impls"]["rtfx-cpu"]["reason"]
    assert rec["impls"]["scipy-chain"]["status"] == "n/a"


def test_budget_caps_slow_implementations():
    calls = []

    def slow_step(i):
        calls.append(i)
        import time
        time.sleep(0.002)
        return np.zeros((1, 4))

    impl = Impl("slow", "peer", "cpu", slow_step, lambda: None, np.asarray)
    capped = runner.trial(impl, blocks=1000, budget_s=0.05)
    assert runner.MIN_BLOCKS <= capped.blocks < 1000 and "0.05 s" in capped.note
    assert capped.warmup == runner.CAPPED_WARMUP
    rtfx = runner.trial(Impl("rtfx-cpu", "rtfx", "cpu", slow_step, lambda: None, np.asarray), 1000, 0.05)
    assert rtfx.blocks is None                   # rtfx is never cut short
    failing = runner.trial(Impl("bad", "peer", "cpu", lambda i: 1 / 0, lambda: None, np.asarray), 10, None)
    assert isinstance(failing, Unavailable) and "ZeroDivisionError" in failing.reason


def test_measure_interleaves_and_records_first_pass():
    calls = []

    def impl(name, blocks=None, warmup=None):
        def step(i):
            calls.append((name, i))
            return np.full((1, 2), float(i))
        return Impl(name, "peer", "cpu", step, lambda: None, lambda y: y.copy(), blocks, warmup=warmup)

    res = measure([impl("a"), impl("b", blocks=2), impl("c", blocks=2, warmup=0)], blocks=4, warmup=1,
                  signal_blocks=3)
    assert len(res["a"].wall_ns) == 4 and len(res["b"].wall_ns) == 2 and len(res["c"].wall_ns) == 2
    assert [i for n, i in calls if n == "a"] == [0, 1, 2, 0, 1]      # cycles over the signal
    assert [i for n, i in calls if n == "c"] == [0, 1]                # no warm-up of its own
    assert [n for n, _ in calls[:3]] == ["a", "b", "c"]
    assert [n for n, _ in calls[3:6]] == ["b", "c", "a"]              # order rotates per round
    assert len(res["a"].outputs) == 3 and len(res["b"].outputs) == 3
    s = stats_us(np.array([1000, 2000, 3000]))
    assert s["p50_us"] == 2.0 and s["max_us"] == 3.0


def test_offline_cell_times_and_checks_every_implementation():
    rec = offline.run_cell("iir", 2, 0.05, ["cpu"], reps=1, budget_s=30.0)
    assert {"rtfx-cpu", "sosfilt", "lfilter", "torchfx-cpu", "torchaudio-cpu", "pedalboard"} <= set(rec["impls"])
    for name, e in rec["impls"].items():
        if e["status"] == "ok":
            assert e["median_s"] > 0 and e["max_rel_err"] < 1e-4, name
        else:
            assert e["reason"], name
    rec = offline.run_cell("fir", 1, 0.05, ["cpu"], reps=1, budget_s=1e-9)   # nothing fits
    assert all(e["status"] != "ok" for e in rec["impls"].values())
    assert rec["impls"]["lfilter"]["status"] == "skipped"


def test_cli_quick_arguments(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "quick_grid", lambda: TINY[:1])
    monkeypatch.setattr(offline, "quick_grid", lambda: [("iir", 1, 0.05)])
    assert main(["--quick", "--dsp", "cpu", "--blocks", "5", "--warmup", "1", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "core.json").read_text())
    assert doc["settings"]["blocks"] == 5 and doc["cells"][0]["impls"]["rtfx-cpu"]["n"] == 5
    assert doc["offline"][0]["impls"]["rtfx-cpu"]["status"] == "ok"
    assert "Offline throughput" in (tmp_path / "core.md").read_text()
    # --only offline re-runs that part and keeps the latency cells of the same folder
    assert main(["--quick", "--dsp", "cpu", "--only", "offline", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "core.json").read_text())
    assert [c["id"] for c in again["cells"]] == [c["id"] for c in doc["cells"]]
    assert again["offline"] and again["settings"]["latency_from"] == doc["settings"]["command"]
    # and --only latency then keeps both the offline rows and where they came from
    assert main(["--quick", "--dsp", "cpu", "--only", "latency", "--out", str(tmp_path)]) == 0
    third = json.loads((tmp_path / "core.json").read_text())
    assert third["offline"] == again["offline"] and third["settings"]["offline_from"] == again["settings"]["command"]


def test_offline_chains_rerun_only_their_rows(tmp_path, monkeypatch):
    """--offline-chains re-times only those chains' offline cells; the other rows of the same
    folder stay as they were, and the settings say where each came from."""
    monkeypatch.setattr(offline, "quick_grid", lambda: [("iir", 1, 0.05), ("butter8", 1, 0.05)])
    assert main(["--quick", "--dsp", "cpu", "--only", "offline", "--out", str(tmp_path)]) == 0
    first = json.loads((tmp_path / "core.json").read_text())
    assert main(["--quick", "--dsp", "cpu", "--only", "offline", "--offline-chains", "butter8",
                 "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "core.json").read_text())
    assert [row["chain"] for row in again["offline"]] == ["iir", "butter8"]
    assert again["offline"][0] == first["offline"][0]  # kept as it was
    assert again["offline"][1]["impls"]["rtfx-cpu"]["status"] == "ok"
    assert again["settings"]["offline_from"].startswith("butter8 rows: this run; the others: ")


def test_full_grid_covers_the_issue():
    grid = C.full_grid()
    iir = [c for c in grid if c.kind == "iir"]
    assert {c.order for c in iir} == {2, 4, 8, 16} and {c.design for c in iir} == {"butter", "ellip"}
    assert {c.frames for c in grid} >= {32, 2048} and {c.channels for c in grid} >= {1, 64}
    assert {c.taps for c in grid if c.kind == "fir"} >= {32, 512}
    assert {c.taps for c in grid if c.kind == "ir"} >= {4800, 480000}
    assert {c.preset for c in grid if c.kind == "preset"} == set(C.discover_presets())
    assert len({c.id for c in grid}) == len(grid)
