"""PNG plots of a latency-bench ``core.json`` (matplotlib, Agg backend: no screen needed).

``python -m latency_bench.plots latency_bench/results/<machine>/core.json [...]`` writes, next
to each file:

- ``latency_vs_block.png``: time per block against block size (IIR, FIR, IR, presets);
- ``latency_vs_channels.png``: against channel count at 256 frames;
- ``latency_vs_length.png``: against IIR order (Butterworth, elliptic) and FIR/IR length;
- ``offline_throughput.png``: TorchFX's paper setup, seconds per run against channels and duration.

Every point is one (cell, implementation): the marker is p50 per block, the bar above it runs to
p99; both axes are logarithmic. The dashed black line is the deadline (frames / samplerate): a
bar crossing it misses. rtfx is drawn in blue (CPU) and purple (CUDA), thick; peers thinner.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BLOCK_PNG = "latency_vs_block.png"
CHANNELS_PNG = "latency_vs_channels.png"
LENGTH_PNG = "latency_vs_length.png"
OFFLINE_PNG = "offline_throughput.png"

STYLE = {
    "rtfx-cpu": dict(color="#1f62c4", marker="o", label="rtfx (CPU)"),
    "rtfx-cuda": dict(color="#8e2fb8", marker="D", label="rtfx (CUDA eager, incl. H2D/D2H + sync)"),
    "sosfilt": dict(color="#e07b00", marker="s", label="scipy sosfilt"),
    "lfilter-cascade": dict(color="#c0392b", marker="^", label="scipy lfilter per section"),
    "lfilter": dict(color="#c0392b", marker="<", label="scipy lfilter (per channel, zi)"),
    "scipy-chain": dict(color="#c0392b", marker="^", label="scipy chain (sosfilt/lfilter)"),
    "oaconvolve": dict(color="#b8860b", marker="v", label="scipy oaconvolve"),
    "torch-df2t": dict(color="#777777", marker="x", label="torch per-sample loop"),
    "torchfx-cpu": dict(color="#2e8b57", marker="P", label="TorchFX (CPU)"),
    "torchfx-cuda": dict(color="#0b5d2e", marker="X", label="TorchFX (CUDA)"),
    "torchaudio-cpu": dict(color="#8b5a2b", marker="h", label="torchaudio lfilter (CPU)"),
    "torchaudio-cuda": dict(color="#5a3510", marker="H", label="torchaudio lfilter (CUDA)"),
    "pedalboard": dict(color="#d6478f", marker="*", label="pedalboard"),
}
FIGSIZE = (15, 5.4)
PANELS_PER_ROW = 5  # more panels wrap to another row (one per sweep: filters, IRs, presets)
ROW_HEIGHT = 3.6
WRONG = 1e-3   # relative error above which a point is drawn hollow: its output is not the filter's
DPI = 100


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _machine_line(doc: dict) -> str:
    m, s = doc.get("machine", {}), doc.get("settings", {})
    gpu = (m.get("gpu") or {}).get("name")
    hw = f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" + (
        f"; GPU {gpu}" if gpu and "cuda" in s.get("devices", []) else "")
    return (f"{s.get('machine_name', '?')} ({hw}; torch {m.get('torch', '?')} "
            f"{s.get('torch_threads', '?')} thread, scipy {m.get('scipy', '?')}; "
            f"{s.get('blocks', '?')} blocks/cell; {m.get('date', '')[:10]})")


def _style(name: str) -> dict:
    return STYLE.get(name, dict(color="#444444", marker=".", label=name))


def _series(ax, pts: list, name: str, k: int, n_impls: int, log_x: bool) -> list[float]:
    """One implementation: ``pts`` = ``[(x, entry)]``; p50 markers joined, bars to p99."""
    pts = [(x, e) for x, e in pts if e.get("status", "ok") == "ok"]
    if not pts:
        return []
    st = _style(name)
    shift = (k - (n_impls - 1) / 2)
    xs = [x * 2 ** (0.05 * shift) if log_x else x + 0.05 * shift for x, _ in pts]
    p50 = [e["p50_us"] for _, e in pts]
    p99 = [e["p99_us"] for _, e in pts]
    rtfx = name.startswith("rtfx")
    ax.plot(xs, p50, "-", color=st["color"], lw=2.4 if rtfx else 1.0, alpha=0.9 if rtfx else 0.5, zorder=3)
    wrong = [_wrong(e) for _, e in pts]
    for flag in (False, True):
        idx = [i for i, w in enumerate(wrong) if w == flag]
        if not idx:
            continue
        ax.errorbar([xs[i] for i in idx], [p50[i] for i in idx],
                    yerr=[[0] * len(idx), [max(p99[i] - p50[i], 0) for i in idx]],
                    fmt=st["marker"], color=st["color"], mfc="white" if flag else st["color"],
                    mew=1.6, ms=9 if rtfx or flag else 6, capsize=3, elinewidth=1.3,
                    label=st["label"] if flag == wrong[0] else None, zorder=4 if rtfx else 3)
        if flag:
            ax.annotate("wrong output", (xs[idx[-1]], p50[idx[-1]]), xytext=(-6, -13),
                        textcoords="offset points", ha="right", fontsize=7.5, color=st["color"])
    return p50 + p99


def _wrong(e: dict) -> bool:
    """Output differs from the float64 reference by more than ``WRONG`` (hollow marker)."""
    err = e.get("max_rel_err")
    return err is not None and err > WRONG


def _impl_names(cells: list[dict]) -> list[str]:
    names: list[str] = []
    for c in cells:
        for n, e in c["impls"].items():
            if e.get("status", "ok") == "ok" and n not in names:
                names.append(n)
    return sorted(names, key=lambda n: (not n.startswith("rtfx"), list(STYLE).index(n) if n in STYLE else 99))


def _panel(ax, cells: list[dict], x_key, title: str, xlabel: str, deadline: str, log_x=True, ticks=None):
    """Draw ``cells`` (one sweep) on ``ax``; ``deadline`` is ``"per-x"`` or ``"flat"``."""
    cells = sorted(cells, key=x_key)
    xs = [x_key(c) for c in cells]
    values = []
    if deadline == "per-x":
        ax.plot(xs, [c["deadline_us"] for c in cells], "k--", lw=1.6, zorder=2, label="deadline (block duration)")
    else:
        ax.axhline(cells[0]["deadline_us"], color="k", ls="--", lw=1.6, zorder=2, label="deadline (block duration)")
    values += [c["deadline_us"] for c in cells]
    names = _impl_names(cells)
    for k, name in enumerate(names):
        values += _series(ax, [(x_key(c), c["impls"][name]) for c in cells if name in c["impls"]],
                          name, k, len(names), log_x)
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(ticks(cells) if ticks else [str(x) for x in xs], fontsize=9)
    ax.minorticks_off() if log_x else None
    ax.set_yscale("log")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    ax.grid(True, which="major", alpha=0.35)
    return values


def _finish(fig, axes, title, doc, path, values):
    lo, hi = min(values), max(values)
    for ax in axes:
        ax.set_ylim(lo / 1.8, hi * 1.8)
    for ax in axes:
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("µs per block (p50, bar: p99)", fontsize=10)
    handles = {}
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 6),
               fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=13, fontweight="bold", y=0.985)
    fig.text(0.5, 0.895, _machine_line(doc) + f"\nhollow marker: wrong output (error > {WRONG:g} against "
             "float64 SciPy, e.g. a peer that keeps no state between blocks)", ha="center", fontsize=9,
             color="#444")
    rows = (len(handles) + 5) // 6
    fig.tight_layout(rect=(0, 0.04 + 0.04 * rows, 1, 0.89))
    fig.savefig(path, dpi=DPI)


def _sweep_cells(doc, kind, axis, **match):
    """Cells of ``kind`` on sweep ``axis`` plus the default cell they sweep around."""
    cs = [c for c in doc["cells"] if c["kind"] == kind and c.get("sweep") in (axis, "default")]
    for key, value in match.items():
        cs = [c for c in cs if c.get(key) == value]
    return cs


def _groups_for(doc, axis: str) -> list[tuple[str, list[dict]]]:
    """Panels of one sweep axis: IIR Butterworth 8, FIR 512, IR 1 s, each preset."""
    d = doc["cells"]
    out = []
    iir = [c for c in d if c["kind"] == "iir" and c.get("sweep") in (axis, "default")
           and c.get("design") == "butter" and c.get("order") == 8]
    out.append(("IIR Butterworth order 8", iir))
    for kind, title in (("fir", "FIR"), ("ir", "IR")):
        cs = [c for c in d if c["kind"] == kind and c.get("sweep") in (axis, "default")]
        if cs:
            ref = next((c for c in cs if c.get("sweep") == "default"), cs[0])
            label = f"FIR {ref['taps']} taps" if kind == "fir" else f"IR {ref['taps'] / ref['samplerate']:g} s"
            out.append((label, [c for c in cs if c["taps"] == ref["taps"]]))
    if axis == "frames":
        for p in sorted({c["preset"] for c in d if c["kind"] == "preset"}):
            out.append((f"preset {Path(p).stem}", [c for c in d if c.get("preset") == p]))
    return [(t, cs) for t, cs in out if len({c["frames" if axis == "frames" else "channels"] for c in cs}) > 1]


def plot_vs(doc: dict, path: Path, axis: str) -> Path | None:
    groups = _groups_for(doc, axis)
    if not groups:
        return None
    plt = _pyplot()
    cols = min(len(groups), PANELS_PER_ROW)
    rows = -(-len(groups) // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(FIGSIZE[0], FIGSIZE[1] + ROW_HEIGHT * (rows - 1)),
                             sharey=True, squeeze=False)
    axes = [ax for row in grid for ax in row][: len(groups)]
    for ax in [ax for row in grid for ax in row][len(groups):]:
        ax.set_visible(False)
    values = []
    for ax, (title, cs) in zip(axes, groups):
        if axis == "frames":
            values += _panel(ax, cs, lambda c: c["frames"], title, "block size (frames)", "per-x")
        else:
            values += _panel(ax, cs, lambda c: c["channels"], title, f"channels ({cs[0]['frames']}-frame blocks)", "flat")
    name = "block size" if axis == "frames" else "channel count"
    _finish(fig, axes, f"Time per block vs {name}: rtfx against SciPy and the peers", doc, path, values)
    plt.close(fig)
    return path


def plot_length(doc: dict, path: Path) -> Path | None:
    d = doc["cells"]
    groups = []
    for design, title in (("butter", "IIR Butterworth"), ("ellip", "IIR elliptic")):
        cs = [c for c in d if c["kind"] == "iir" and c.get("design") == design and c.get("sweep") in ("order", "default")]
        if len({c["order"] for c in cs}) > 1:
            groups.append((f"{title} (order)", cs, lambda c: c["order"], "filter order", None))
    cs = [c for c in d if c["kind"] in ("fir", "ir") and c.get("sweep") in ("taps", "default")]
    if len({c["taps"] for c in cs}) > 1:
        ticks = lambda cells: [f"{c['taps']}" if c["kind"] == "fir" else f"{c['taps'] / c['samplerate']:g} s" for c in cells]
        groups.append(("FIR → long IR (length)", cs, lambda c: c["taps"], "taps (FIR) / IR seconds", ticks))
    if not groups:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=FIGSIZE, sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": [1] * (len(groups) - 1) + [1.6]} if len(groups) > 1 else None)
    axes = list(axes[0])
    values = []
    for ax, (title, cs, key, xlabel, ticks) in zip(axes, groups):
        values += _panel(ax, cs, key, title + f", {cs[0]['frames']} frames × {cs[0]['channels']} ch", xlabel,
                         "flat", ticks=ticks)
    _finish(fig, axes, "Time per block vs filter order and IR length", doc, path, values)
    plt.close(fig)
    return path


def plot_offline(doc: dict, path: Path) -> Path | None:
    recs = doc.get("offline") or []
    if not recs:
        return None
    plt = _pyplot()
    panels = []
    for chain, title in (("iir", "IIR chain"), ("fir", "FIR chain"), ("butter8", "Butterworth 8")):
        rs = [r for r in recs if r["chain"] == chain]
        sec_ref = max((r["seconds"] for r in rs), key=lambda s: sum(r["seconds"] == s for r in rs), default=None)
        by_ch = [r for r in rs if r["seconds"] == sec_ref]
        ch_ref = max((r["channels"] for r in rs), key=lambda c: sum(r["channels"] == c for r in rs), default=None)
        by_sec = [r for r in rs if r["channels"] == ch_ref]
        if len(by_ch) > 1:
            panels.append((f"{title}: {sec_ref:g} s of audio", by_ch, "channels", "channels"))
        if len(by_sec) > 1:
            panels.append((f"{title}: {ch_ref} channels", by_sec, "seconds", "signal duration (s)"))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=FIGSIZE, squeeze=False)
    axes = list(axes[0])
    for ax, (title, rs, key, xlabel) in zip(axes, panels):
        rs = sorted(rs, key=lambda r: r[key])
        names = _impl_names(rs)
        names += [n for r in rs for n, e in r["impls"].items()
                  if e.get("status") == "skipped" and n not in names]
        for name in names:
            st = _style(name)
            label = "scipy lfilter (TorchFX's baseline)" if name == "lfilter" else st["label"]
            ok = [(r[key], r["impls"][name]) for r in rs if r["impls"].get(name, {}).get("status") == "ok"]
            if ok:
                ax.plot([x for x, _ in ok], [e["median_s"] for _, e in ok], "-", color=st["color"],
                        lw=2.4 if name.startswith("rtfx") else 1.0, zorder=3)
                for x, e in ok:
                    ax.plot([x], [e["median_s"]], st["marker"], color=st["color"], ms=8,
                            mfc="white" if _wrong(e) else st["color"], mew=1.6, label=label, zorder=4)
            # not run (over the time budget): the probe's prediction, hollow, dotted
            pred = [(r[key], r["impls"][name]["predicted_s"]) for r in rs
                    if r["impls"].get(name, {}).get("status") == "skipped"]
            if pred:
                line = ([(ok[-1][0], ok[-1][1]["median_s"])] if ok else []) + pred
                ax.plot(*zip(*line), ":", color=st["color"], lw=1.2, zorder=2)
                ax.plot(*zip(*pred), st["marker"], color=st["color"], mfc="none", ms=8, alpha=0.6,
                        label=None if ok else label, zorder=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([r[key] for r in rs])
        ax.set_xticklabels([f"{r[key]:g}" for r in rs])
        ax.minorticks_off()
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.35)
    axes[0].set_ylabel("seconds per run (median)")
    handles = {}
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 6),
               fontsize=9, frameon=False)
    fig.suptitle("Offline throughput, TorchFX's paper setup (44.1 kHz noise) and an 8th-order Butterworth: lower is faster",
                 fontsize=13, fontweight="bold", y=0.985)
    fig.text(0.5, 0.895, _machine_line(doc) + "\nwhite-filled marker: wrong output (error > "
             f"{WRONG:g}); faint marker on a dotted line: not run, predicted from a 1 s probe "
             "(over the time budget)", ha="center", fontsize=9, color="#444")
    fig.tight_layout(rect=(0, 0.12, 1, 0.89))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_file(json_path, out_dir=None) -> list[Path]:
    """Write every PNG for one ``core.json`` (next to it unless ``out_dir``); return their paths."""
    json_path = Path(json_path)
    doc = json.loads(json_path.read_text())
    out = Path(out_dir) if out_dir is not None else json_path.parent
    out.mkdir(parents=True, exist_ok=True)
    written = [plot_vs(doc, out / BLOCK_PNG, "frames"), plot_vs(doc, out / CHANNELS_PNG, "channels"),
               plot_length(doc, out / LENGTH_PNG), plot_offline(doc, out / OFFLINE_PNG)]
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
