"""``rtfx live`` and ``rtfx demo``: open a device, stream a preset, show and report timings."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sounddevice as sd

from ..audiofile import read_audio
from ..preset import PresetError, load_preset
from .devices import DeviceError, check_settings, find_device
from .engine import LiveEngine
from .recorder import Recorder

ASSETS = Path(__file__).resolve().parents[2] / "assets"
STALL_SECONDS = 2.0  # no callback for this long while running: the device is gone


class LiveError(Exception):
    """A problem the user can fix (bad device, rate, file, preset); printed without traceback."""


class DeviceLost(LiveError):
    """The device vanished mid-stream. The recording and report are written; PortAudio is
    left in a state where its teardown hangs, so the process should exit with ``os._exit``."""


@dataclass
class LiveOptions:
    """What ``rtfx live`` was asked for (see ``rtfx live --help``)."""

    preset: Path
    device: str | None = None
    samplerate: int | None = None
    blocksize: int = 128
    channels: int = 2
    input_channels: list[int] | None = None
    dsp: str = "cpu"
    input_file: Path | None = None
    record: Path | None = None
    seconds: float | None = None
    report: Path | None = None
    status: bool = True
    tail_seconds: float = 0.0


#: Blocks the live status line and the engine process's meters summarise (~10 s at 128 frames).
RECENT_BLOCKS = 4096


def _status_line(engine: LiveEngine) -> str:
    summary = engine.meters.summary(RECENT_BLOCKS)
    dsp = summary["dsp_us"]
    return (
        f"dsp {dsp['p50']:7.1f} / {dsp['p99']:7.1f} / {dsp['max']:7.1f} us (p50/p99/max) "
        f"of {summary['deadline_us']:.0f} us | load {100 * summary['load_p99']:5.1f}% | "
        f"xruns {summary['xruns']} | misses {summary['deadline_misses']} | "
        f"latency {engine.latency_ms['round_trip']:.1f} ms"
    )


def _load_input(opts: LiveOptions, samplerate: int) -> np.ndarray | None:
    if opts.input_file is None:
        return None
    try:
        audio, rate = read_audio(opts.input_file)
    except ValueError as error:
        raise LiveError(str(error)) from None
    if rate != samplerate:
        raise LiveError(
            f"{opts.input_file} is {rate} Hz but the stream runs at {samplerate} Hz: "
            f"pass --samplerate {rate} or resample the file"
        )
    if audio.shape[0] not in (1, opts.channels):
        raise LiveError(f"{opts.input_file} has {audio.shape[0]} channels; use a mono file or {opts.channels} channels")
    return np.ascontiguousarray(audio.T)


def open_engine(opts: LiveOptions) -> tuple[LiveEngine, dict]:
    """Load the preset, pick and check the device, open (not start) the engine.

    Returns the engine and what the report says about the set-up. Raises ``LiveError``.
    """
    try:
        chain = load_preset(opts.preset)
        kind = "output" if opts.input_file else "duplex"
        device = find_device(opts.device, kind)
        info = sd.query_devices(device)
        samplerate = int(opts.samplerate or info["default_samplerate"])
        inputs = 0 if opts.input_file else max(opts.input_channels or [1])
        check_settings(device, samplerate, opts.channels, inputs)
    except (PresetError, DeviceError) as error:
        raise LiveError(str(error)) from None
    input_audio = _load_input(opts, samplerate)
    recorder = Recorder(opts.record, samplerate, opts.channels) if opts.record else None
    try:
        engine = LiveEngine(
            chain, samplerate, opts.blocksize, opts.channels, device=device,
            input_channels=opts.input_channels, dsp=opts.dsp, input_audio=input_audio, recorder=recorder,
            tail_seconds=opts.tail_seconds,
        )
    except (ValueError, sd.PortAudioError) as error:
        if recorder is not None:
            recorder.close()
        raise LiveError(f"cannot open {info['name']!r}: {error}") from None
    setup = {
        "samplerate": samplerate, "blocksize": opts.blocksize, "channels": opts.channels,
        "dsp_device": opts.dsp, "dsp_path": engine.processor.path, "preset": str(opts.preset),
        "device": {"name": info["name"], "hostapi": sd.query_hostapis(info["hostapi"])["name"], "index": device},
        "input_file": str(opts.input_file) if opts.input_file else None,
        "record": str(opts.record) if opts.record else None,
    }
    return engine, setup


def run_live(opts: LiveOptions, out=sys.stderr) -> dict:
    """Stream until ``seconds`` pass, the input file has played, Ctrl-C, or the device goes.

    Returns the report (also written to ``opts.report`` if given).
    """
    engine, setup = open_engine(opts)
    if opts.dsp == "cuda":
        print(f"rtfx live: DSP on {setup['dsp_path']}", file=out)
    error = _stream(engine, opts, out)
    report = {**setup, **engine.meters.summary(), "latency_ms": engine.latency_ms, "error": error}
    if opts.report:
        Path(opts.report).write_text(json.dumps(report, indent=2) + "\n")
    if error:
        raise DeviceLost(error)
    return report


def _stream(engine: LiveEngine, opts: LiveOptions, out) -> str | None:
    """Run the engine; return an error message if the stream died, else None."""
    engine.start()
    started = time.monotonic()
    error = None
    interactive = opts.status and out.isatty()
    shown = started
    try:
        while True:
            time.sleep(0.25)
            if interactive:  # a line that updates in place, 4 times a second
                print("\r" + _status_line(engine), end="", file=out, flush=True)
            elif opts.status and time.monotonic() - shown >= 2.0:  # a log: a line every 2 s
                print(_status_line(engine), file=out, flush=True)
                shown = time.monotonic()
            now = time.monotonic()
            if opts.seconds is not None and now - started >= opts.seconds:
                break
            if engine.finished.is_set():
                break
            if engine.stream_ended.is_set() or now - engine.last_callback > STALL_SECONDS:
                error = "the audio device stopped delivering blocks (disconnected?); what was recorded is kept"
                break
    except KeyboardInterrupt:
        pass
    finally:
        if error:
            engine.abandon()
        else:
            engine.stop()
        if interactive:
            print(file=out)
    return error


def has_audio_device() -> bool:
    """True when PortAudio sees a device with outputs (a sound card, or a running JACK)."""
    return any(d["max_output_channels"] > 0 for d in sd.query_devices())


def run_demo(out=sys.stderr, seconds: float | None = None) -> dict:
    """The main job with no set-up.

    With a sound device: the guitar demo preset live on it (guitar or mic in, Ctrl-C stops).
    Without: a JACK dummy server (a real audio clock, no sound card) is started, the bundled
    guitar DI is re-amped through the preset on it, and the recording and report are written
    to ``out/``.
    """
    preset = ASSETS / "presets" / "guitar_crunch.json"
    if has_audio_device():
        return run_live(LiveOptions(preset=preset, seconds=seconds), out)
    from .virtual import JackDummyServer

    blocksize = 256  # on a 2-core VM 128 frames already overruns now and then (see README)
    opts = LiveOptions(
        preset=preset, blocksize=blocksize, input_file=ASSETS / "audio" / "guitar_di.wav",
        record=Path("out/demo_live.wav"), report=Path("out/demo_report.json"), seconds=seconds,
        tail_seconds=2.5,  # the hall's decay
    )
    print("rtfx demo: no sound device here; starting a virtual one (JACK dummy driver)", file=out)
    with JackDummyServer(samplerate=48000, period=blocksize):
        report = run_live(opts, out)
    print(f"rtfx demo: recorded {opts.record}, report {opts.report}", file=out)
    return report
