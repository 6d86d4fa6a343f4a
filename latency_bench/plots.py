"""PNG plots of a latency-bench ``core.json`` (matplotlib, Agg backend: no screen needed).

``python -m latency_bench.plots latency_bench/results/<machine>/core.json [...]`` writes
``iir_latency.png`` and ``convolution_latency.png`` next to each file, so committed runs can be
re-plotted without re-running them.

Every point is one (cell, implementation): the marker is p50 per block, the bar above it runs to
p99. The dashed black line is the cell's deadline (frames / samplerate); a p99 above it misses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IIR_PNG = "iir_latency.png"
CONV_PNG = "convolution_latency.png"

# One colour and marker per implementation (rtfx in blues/purples, SciPy in warm colours).
STYLE = {
    "rtfx-cpu": dict(color="#1f62c4", marker="o", label="rtfx (CPU)"),
    "rtfx-cuda": dict(color="#8e2fb8", marker="D", label="rtfx (CUDA, incl. H2D/D2H + sync)"),
    "sosfilt": dict(color="#e07b00", marker="s", label="scipy sosfilt"),
    "lfilter-cascade": dict(color="#c0392b", marker="^", label="scipy lfilter × 4 sections"),
    "lfilter": dict(color="#c0392b", marker="^", label="scipy lfilter"),
}
IIR_IMPLS = ["rtfx-cpu", "rtfx-cuda", "sosfilt", "lfilter-cascade"]
CONV_IMPLS = ["rtfx-cpu", "rtfx-cuda", "lfilter"]

FIGSIZE = (11, 5)   # inches; at DPI 100 -> 1100 x 500 px
DPI = 100


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _machine_line(doc: dict) -> str:
    m, s = doc.get("machine", {}), doc.get("settings", {})
    name = s.get("machine_name") or "unknown machine"
    cpu = f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores"
    gpu = (m.get("gpu") or {}).get("name")
    hw = f"{cpu}; GPU {gpu}" if gpu and "cuda" in s.get("devices", []) else cpu
    return (f"{name} ({hw}; torch {m.get('torch', '?')} {s.get('torch_threads', '?')} thread, "
            f"scipy {m.get('scipy', '?')}; {s.get('blocks', '?')} blocks/cell)")


def _point(ax, x, e: dict, style: dict, label=None, full_n=None):
    p50, p99 = e["p50_us"], e["p99_us"]
    ax.errorbar([x], [p50], yerr=[[0], [max(p99 - p50, 0)]], fmt=style["marker"],
                color=style["color"], ms=7, capsize=4, elinewidth=1.6, capthick=1.6,
                label=label, zorder=3)
    if full_n and e.get("n", full_n) < full_n:
        ax.annotate(f"n={e['n']}", (x, p99), xytext=(4, 3), textcoords="offset points",
                    fontsize=8, color=style["color"])


def _series(ax, pts: list, name: str, full_n, values: list) -> None:
    """One implementation's points ``(x, entry)`` joined by a faint line; p50/p99 into values."""
    if not pts:
        return
    st = STYLE[name]
    ax.plot([x for x, _ in pts], [e["p50_us"] for _, e in pts], "-", color=st["color"],
            lw=1, alpha=0.45, zorder=2)
    for i, (x, e) in enumerate(pts):
        _point(ax, x, e, st, st["label"] if i == 0 else None, full_n)
        values += [e["p50_us"], e["p99_us"]]


def _log_limits(ax, values):
    lo, hi = min(values), max(values)
    ax.set_ylim(lo / 1.6, hi * 1.8)


def _finish(fig, axes, title, doc, path):
    handles, labels = {}, []
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in handles:
                handles[l] = h
                labels.append(l)
    fig.legend([handles[l] for l in labels], labels, loc="lower center", ncol=len(labels),
               fontsize=10, frameon=False)
    fig.suptitle(title, fontsize=13, fontweight="bold", y=0.985)
    fig.text(0.5, 0.93, _machine_line(doc), ha="center", fontsize=9.5, color="#444")
    fig.tight_layout(rect=(0, 0.07, 1, 0.945))
    fig.savefig(path, dpi=DPI)


def _figure(doc: dict, kind: str, known: list, panel_key: str):
    """Cells of ``kind``, the implementations present, one panel per value of ``panel_key``.

    Returns ``(plt, cells, impls, panel values, fig, axes, blocks per cell)`` or None.
    """
    cells = [c for c in doc["cells"] if c["kind"] == kind]
    if not cells:
        return None
    plt = _pyplot()
    impls = [n for n in known if any(n in c["impls"] for c in cells)]
    panels = sorted({c[panel_key] for c in cells})
    fig, axes = plt.subplots(1, len(panels), figsize=FIGSIZE, sharey=True, squeeze=False)
    return plt, cells, impls, panels, fig, list(axes[0]), doc.get("settings", {}).get("blocks")


def plot_iir(doc: dict, path: Path) -> Path | None:
    figure = _figure(doc, "iir", IIR_IMPLS, "channels")
    if figure is None:
        return None
    plt, cells, impls, chans, fig, axes, full_n = figure
    values = []
    for ax, ch in zip(axes, chans):
        cs = sorted((c for c in cells if c["channels"] == ch), key=lambda c: c["frames"])
        frames = [c["frames"] for c in cs]
        # deadline: frames / samplerate, a straight line on log-log axes
        ax.plot(frames, [c["deadline_us"] for c in cs], "k--", lw=1.4, zorder=2,
                label="deadline (block length in time)")
        for c in cs:
            ax.annotate(f"{c['deadline_us'] / 1000:.2f} ms", (c["frames"], c["deadline_us"]),
                        xytext=(0, 5), textcoords="offset points", ha="center", fontsize=8.5)
        values += [c["deadline_us"] for c in cs]
        for k, name in enumerate(impls):
            offset = 2 ** (0.09 * (k - (len(impls) - 1) / 2))  # side by side on the log x axis
            pts = [(c["frames"] * offset, c["impls"][name]) for c in cs if name in c["impls"]]
            _series(ax, pts, name, full_n, values)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(frames)
        ax.set_xticklabels([str(f) for f in frames])
        ax.set_xlim(frames[0] / 1.5, frames[-1] * 1.5)
        ax.set_xlabel("block size (frames at 48 kHz)", fontsize=11)
        ax.set_title(f"{ch} channels", fontsize=12)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", axis="y", alpha=0.12)
        ax.tick_params(labelsize=10)
    axes[0].set_ylabel("time per block (µs)", fontsize=11)
    _log_limits(axes[0], values)
    _finish(fig, axes, "IIR 8th-order Butterworth lowpass (4 SOS): time per block, "
            "marker p50, bar to p99", doc, path)
    plt.close(fig)
    return path


def _ir_tick(c: dict) -> str:
    taps, sr = c["taps"], c.get("samplerate", 48000)
    if taps >= sr // 2:
        return f"IR {taps / sr:g} s\n({taps} taps)"
    return f"FIR {taps} taps\n({taps / sr * 1000:.1f} ms)"


def plot_convolution(doc: dict, path: Path) -> Path | None:
    figure = _figure(doc, "fir", CONV_IMPLS, "frames")
    if figure is None:
        return None
    plt, cells, impls, frames_all, fig, axes, full_n = figure
    taps_all = sorted({c["taps"] for c in cells})
    values = []
    for ax, fr in zip(axes, frames_all):
        cs = sorted((c for c in cells if c["frames"] == fr), key=lambda c: c["taps"])
        xs = {t: i for i, t in enumerate(taps_all)}
        deadline = cs[0]["deadline_us"]
        ax.axhline(deadline, color="k", ls="--", lw=1.4, zorder=2,
                   label="deadline (block length in time)")
        ax.annotate(f"deadline {deadline / 1000:.2f} ms", (-0.5, deadline),
                    xytext=(4, 4), textcoords="offset points", ha="left", fontsize=9)
        values.append(deadline)
        for k, name in enumerate(impls):
            dx = 0.14 * (k - (len(impls) - 1) / 2)
            pts = [(xs[c["taps"]] + dx, c["impls"][name]) for c in cs if name in c["impls"]]
            _series(ax, pts, name, full_n, values)
        # how much faster rtfx (CPU) is than lfilter at p50, written under each group
        for c in cs:
            r = c.get("speedup", {}).get("rtfx-cpu", {}).get("lfilter", {}).get("p50")
            if r:
                ax.annotate(f"{r:.0f}×" if r >= 10 else f"{r:.1f}×",
                            (xs[c["taps"]], c["impls"]["rtfx-cpu"]["p50_us"]),
                            xytext=(0, -16), textcoords="offset points", ha="center",
                            fontsize=8.5, color=STYLE["rtfx-cpu"]["color"])
        ax.set_yscale("log")
        ax.set_xticks(range(len(taps_all)))
        ax.set_xticklabels([_ir_tick(next(c for c in cells if c["taps"] == t)) for t in taps_all])
        ax.set_xlim(-0.5, len(taps_all) - 0.5)
        ax.set_title(f"{fr}-frame blocks, {cs[0]['channels']} channels", fontsize=12)
        ax.grid(True, which="major", axis="y", alpha=0.35)
        ax.grid(True, which="minor", axis="y", alpha=0.12)
        ax.tick_params(labelsize=10)
    axes[0].set_ylabel("time per block (µs)", fontsize=11)
    _log_limits(axes[0], values)
    lo = axes[0].get_ylim()[0]
    axes[0].set_ylim(lo / 1.6, None)   # room for the speedup labels under the rtfx markers
    _finish(fig, axes, "FIR / long-IR convolution: time per block, marker p50, bar to p99 "
            "(blue ×: rtfx CPU vs lfilter at p50)", doc, path)
    plt.close(fig)
    return path


def plot_file(json_path, out_dir=None) -> list[Path]:
    """Write both PNGs for one ``core.json`` (next to it unless ``out_dir``); return their paths."""
    json_path = Path(json_path)
    doc = json.loads(json_path.read_text())
    out = Path(out_dir) if out_dir is not None else json_path.parent
    out.mkdir(parents=True, exist_ok=True)
    written = [plot_iir(doc, out / IIR_PNG), plot_convolution(doc, out / CONV_PNG)]
    return [p for p in written if p is not None]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m latency_bench.plots",
                                 description="PNG plots of latency_bench core.json files")
    ap.add_argument("json", nargs="+", help="core.json file(s); PNGs are written next to each")
    args = ap.parse_args(argv)
    for j in args.json:
        for p in plot_file(j):
            print(f"wrote {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
