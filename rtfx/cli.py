"""The ``rtfx`` command line: ``render``, ``devices``, ``live``, ``demo``, ``gui`` (see ``rtfx -h``)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .audiofile import read_audio, write_audio
from .preset import PresetError, load_preset
from .render import CPU_BLOCK, CUDA_BLOCK, default_blocksize, render


class UserError(Exception):
    """An error the user can fix; printed without a traceback."""


def _device(name: str) -> str:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--dsp cuda: no CUDA GPU is available here (use --dsp cpu)")
    return name


def cmd_render(args: argparse.Namespace) -> None:
    device = _device(args.dsp)
    try:
        chain = load_preset(args.preset)
        audio, samplerate = read_audio(args.input)
    except (PresetError, ValueError) as error:
        raise UserError(str(error)) from None
    if args.channels:
        if audio.shape[0] == 1:
            audio = np.repeat(audio, args.channels, axis=0)
        elif audio.shape[0] != args.channels:
            raise UserError(f"{args.input} has {audio.shape[0]} channels; --channels {args.channels} needs 1 or {args.channels}")
    frames = audio.shape[1]
    blocksize = args.blocksize or default_blocksize(device)
    print(
        f"rtfx render: {args.input} ({audio.shape[0]} ch, {samplerate} Hz, {frames / samplerate:.2f} s) "
        f"through {chain.name or args.preset} ({len(chain)} stages), {blocksize}-frame blocks on {device}",
        file=sys.stderr,
    )
    started = time.perf_counter()
    with tqdm(total=frames, unit="frame", unit_scale=True, file=sys.stderr, leave=False, disable=args.quiet) as bar:
        try:
            out = render(chain, audio, samplerate, blocksize, device, progress=bar.update)
        except ValueError as error:  # e.g. a frequency above this file's Nyquist
            raise UserError(f"{args.preset}: {error}") from None
    elapsed = time.perf_counter() - started
    write_audio(args.output, out, samplerate)
    peak = float(np.max(np.abs(out))) if out.size else 0.0
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    print(
        f"wrote {args.output}: {frames} frames, peak {peak_db:.1f} dBFS; "
        f"{elapsed:.2f} s ({frames / samplerate / max(elapsed, 1e-9):.0f}x real time)",
        file=sys.stderr,
    )


def _channel_list(text: str) -> list[int]:
    try:
        channels = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1-based channel numbers like 1,2; got {text!r}") from None
    if not channels or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"channel numbers start at 1; got {text!r}")
    return channels


def cmd_devices(args: argparse.Namespace) -> None:
    from .live.devices import list_devices

    print(list_devices())


def _run_live(function, *call_args) -> None:
    from .live.session import DeviceLost, LiveError

    try:
        report = function(*call_args)
    except DeviceLost as error:
        # PortAudio cannot be shut down cleanly after its device vanished: leave at once.
        print(f"rtfx: error: {error}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(2)
    except LiveError as error:
        raise UserError(str(error)) from None
    print(json.dumps({k: report[k] for k in ("blocks", "dsp_us", "load_p99", "xruns", "deadline_misses", "latency_ms")}))


def cmd_live(args: argparse.Namespace) -> None:
    from .live.session import LiveOptions, run_live

    _device(args.dsp)
    options = LiveOptions(
        preset=args.preset, device=args.device, samplerate=args.samplerate, blocksize=args.blocksize,
        channels=args.channels, input_channels=args.input_channels, dsp=args.dsp, input_file=args.input_file,
        record=args.record, seconds=args.seconds, report=args.report, status=not args.quiet,
        tail_seconds=args.tail,
    )
    _run_live(run_live, options)


def cmd_demo(args: argparse.Namespace) -> None:
    from .live.session import run_demo

    _run_live(run_demo, sys.stderr, args.seconds)


def cmd_gui(args: argparse.Namespace) -> None:
    try:
        from gui.app import run
    except ImportError as error:
        raise UserError(f"the window needs PyQt6 and pyqtgraph ({error}): pip install -e '.[gui]'") from None
    code = run(args)
    if code:
        raise UserError("the window exited with an error (see above)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtfx", description="Real-time streaming audio effects in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render", help="stream a file through a preset's chain, block by block, to a float WAV")
    p.add_argument("input", type=Path, help="input sound file (any rate; the chain runs at the file's rate)")
    p.add_argument("output", type=Path, help="output file (32-bit float WAV)")
    p.add_argument("--preset", required=True, type=Path, help="preset JSON (see README)")
    p.add_argument("--blocksize", type=int, default=None,
                   help=f"frames per block (default {CPU_BLOCK} on cpu, as the live engine; {CUDA_BLOCK} on cuda, "
                        "where IIR filters then run in parallel over time); any size gives the same output")
    p.add_argument("--dsp", choices=("cpu", "cuda"), default="cpu", help="where the chain runs (default cpu)")
    p.add_argument("--channels", type=int, default=0, help="upmix a mono input to this many channels")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_render)

    p = sub.add_parser("devices", help="list host APIs and audio devices")
    p.set_defaults(run=cmd_devices)

    p = sub.add_parser("live", help="run a preset live on an audio device")
    p.add_argument("--preset", required=True, type=Path, help="preset JSON")
    p.add_argument("--device", help="device name (substring) or index; default: JACK if running, else the default")
    p.add_argument("--samplerate", type=int, help="Hz (default: the device's)")
    p.add_argument("--blocksize", type=int, default=128, help="frames per callback (default 128)")
    p.add_argument("--channels", type=int, default=2, help="output channels (default 2)")
    p.add_argument("--input-channels", type=_channel_list, help="1-based input channels, e.g. 1 or 1,2 (default 1)")
    p.add_argument("--dsp", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--input-file", type=Path, help="play this file into the chain instead of the input (re-amp)")
    p.add_argument("--record", type=Path, help="write the chain's output to this float WAV")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl-C, or the input file's end)")
    p.add_argument("--report", type=Path, help="write a JSON report of timings, xruns and latency")
    p.add_argument("--tail", type=float, default=0.0, help="with --input-file: seconds to keep recording after it ends")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.set_defaults(run=cmd_live)

    p = sub.add_parser("demo", help="the guitar demo live; on a virtual JACK device if there is no sound card")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("gui", help="the rack window: edit a chain live, see CPU/GPU latency (PyQt6)")
    try:
        from gui.app import add_arguments  # no Qt import: only the options
    except ImportError:
        p.add_argument("--screenshot", type=Path)
        p.add_argument("--seconds", type=float, default=5.0)
    else:
        add_arguments(p)
    p.set_defaults(run=cmd_gui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "blocksize", None) is not None and args.blocksize < 1:
        print("rtfx: error: --blocksize must be >= 1", file=sys.stderr)
        return 2
    try:
        args.run(args)
    except UserError as error:
        print(f"rtfx: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
