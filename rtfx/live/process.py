"""The live engine in a process of its own, driven by small control messages.

Why: a Qt event loop and a Python audio callback in one process share the GIL, so a busy GUI
delays the callback. Here the GUI (or any client) talks to an engine process (multiprocessing,
spawn) through a pipe, and reads its meters from shared memory, polled at any rate without a
lock (a torn read shows one stale number for one poll, never blocks the audio).

Messages (client -> engine): ``("set", stage, name, value)`` (``mix`` too), ``("bypass", stage,
flag)``, ``("chain", preset_dict[, base_dir])``, ``("dsp", "cpu" | "cuda")``, ``("query",)``,
``("stop",)``. Replies (engine -> client): ``("started", info)``, ``("error", message)``,
``("state", preset_dict)`` (the chain playing now, answering ``query``), ``("dsp", path)`` (how
the chain runs after a DSP switch), ``("stopped", report)``.

Besides the scalar meters, shared memory holds the chain's input and output levels (peak and
RMS per channel since the previous update), the output's spectrum, the newest blocks' DSP
times and a tuner's reading when the chain has a ``tuner`` stage.
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import os
import sys
import time
from dataclasses import asdict
from multiprocessing import shared_memory

import numpy as np

from .meters import levels, spectrum_db
from .session import RECENT_BLOCKS, LiveOptions

#: Layout of the shared meters (float64 slots).
METER_FIELDS = ("blocks", "dsp_p50_us", "dsp_p99_us", "dsp_max_us", "deadline_us", "load_p99",
                "xruns", "deadline_misses", "faults", "round_trip_ms", "alive",
                "channels", "updates", "tuner_hz", "tuner_clarity", "tuner_reference_hz")
GIL_SWITCH_S = 0.00005  # the engine process's GIL switch interval (Python's default: 0.005)
PUBLISH_S = 0.05  # meters are published this often
MAX_CHANNELS = 8  # level meters kept for at most this many channels
SPECTRUM_SIZE = 4096  # FFT length of the output spectrum (bins: SPECTRUM_SIZE // 2 + 1)
HISTORY_BLOCKS = 1024  # newest blocks' DSP times kept for a plot
_LAYOUT = {  # name: float64 slots, in this order
    "scalars": len(METER_FIELDS), "levels": 4 * MAX_CHANNELS,
    "spectrum": SPECTRUM_SIZE // 2 + 1, "history": HISTORY_BLOCKS,
}


def _views(buffer) -> dict[str, np.ndarray]:
    """Named float64 arrays over the shared block (see ``_LAYOUT``)."""
    views, offset = {}, 0
    for name, size in _LAYOUT.items():
        views[name] = np.ndarray((size,), dtype=np.float64, buffer=buffer, offset=8 * offset)
        offset += size
    return views


class EngineProcess:
    """Client side: start, control and watch a ``LiveEngine`` running in another process.

    Args:
        options: what to stream (as for ``rtfx live``); ``status`` output is off.
        loop_input: play ``options.input_file`` round and round until stopped (the GUI's
            demo input) instead of once.
    """

    def __init__(self, options: LiveOptions, loop_input: bool = False) -> None:
        self.options = options
        self._shm = shared_memory.SharedMemory(create=True, size=8 * sum(_LAYOUT.values()))
        self._views = _views(self._shm.buf)
        self._meters = self._views["scalars"]
        self._shm.buf[:] = bytes(len(self._shm.buf))
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._received: list = []  # messages read from the pipe, not yet asked for
        self._process = context.Process(
            target=_serve, args=(child, self._shm.name, asdict(options), loop_input), name="rtfx-engine", daemon=True
        )

    def start(self, timeout: float = 30.0) -> dict:
        """Spawn the engine and wait until it streams; returns its start info.

        Raises ``RuntimeError`` with the engine's message if it could not start.
        """
        self._process.start()
        if not self._conn.poll(timeout):
            self.close()
            raise RuntimeError("the engine process did not start in time")
        kind, payload = self._conn.recv()
        if kind != "started":
            self.close()
            raise RuntimeError(payload)
        return payload

    def set_parameter(self, stage: int, name: str, value: float) -> None:
        self._conn.send(("set", stage, name, float(value)))

    def switch_dsp(self, dsp: str) -> None:
        """Move the chain to "cpu" or "cuda" while streaming (``("dsp", path)`` follows)."""
        self._conn.send(("dsp", dsp))

    def set_bypass(self, stage: int, bypass: bool) -> None:
        self._conn.send(("bypass", stage, bool(bypass)))

    def replace_chain(self, preset: dict, base_dir: str | None = None) -> None:
        """Swap in the chain of ``preset`` (a preset document), crossfaded in the engine;
        its ``file`` fields are relative to ``base_dir`` (default: the engine's folder)."""
        self._conn.send(("chain", preset) if base_dir is None else ("chain", preset, str(base_dir)))

    def chain_state(self, timeout: float = 5.0) -> dict | None:
        """The preset of the chain the engine plays now (None if it does not answer)."""
        self._conn.send(("query",))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._receive(0.05)
            for i, (kind, payload) in enumerate(self._received):
                if kind == "state":
                    del self._received[i]
                    return payload
        return None

    def levels(self) -> dict[str, np.ndarray]:
        """Peak and RMS (linear) per channel of the chain's input and output, measured over
        the audio since the previous update: ``{"in_peak", "in_rms", "out_peak", "out_rms"}``."""
        channels = int(self._meters[METER_FIELDS.index("channels")])
        table = self._views["levels"].reshape(4, MAX_CHANNELS)[:, :channels].copy()
        return dict(zip(("in_peak", "in_rms", "out_peak", "out_rms"), table))

    def spectrum(self) -> np.ndarray:
        """The output's magnitude spectrum in dBFS (``SPECTRUM_SIZE // 2 + 1`` bins up to
        Nyquist), of the newest ``SPECTRUM_SIZE`` frames."""
        return self._views["spectrum"].copy()

    def dsp_history(self) -> np.ndarray:
        """DSP time (us) of the newest blocks, oldest first (fewer at the start)."""
        history = self._views["history"].copy()
        return history[: min(len(history), int(self._meters[0]))]

    def is_alive(self) -> bool:
        """Whether the engine process still runs."""
        return self._process.is_alive()

    def meters(self) -> dict:
        """The engine's latest meters (updated ~10 times a second); never blocks."""
        return dict(zip(METER_FIELDS, self._meters.tolist()))

    def messages(self) -> list:
        """Messages the engine sent since the last call (errors of rejected commands...)."""
        self._receive()
        out, self._received = self._received, []
        return out

    def _receive(self, timeout: float = 0.0) -> None:
        try:
            while self._conn.poll(timeout):
                self._received.append(self._conn.recv())
                timeout = 0.0
        except (EOFError, OSError):  # the engine process has gone
            pass

    def stop(self, timeout: float = 10.0) -> dict | None:
        """Stop streaming; returns the engine's final report (None if it died)."""
        if self._process.is_alive():
            self._conn.send(("stop",))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not any(kind == "stopped" for kind, _ in self._received):
                self._receive(0.1)
        self.close()
        reports = [payload for kind, payload in self._received if kind == "stopped"]
        self._received = [m for m in self._received if m[0] != "stopped"]
        return reports[0] if reports else None

    def kill(self) -> None:
        """End the engine at once, without its report: for a device that vanished, where
        PortAudio's teardown would hang (see ``LiveEngine.abandon``)."""
        if self._process.is_alive():
            self._process.kill()
        self.close()

    def close(self) -> None:
        """End the process (if still there) and free the shared memory."""
        self._views = self._meters = None  # views into the block must go before it closes
        if self._process.pid is not None:
            self._process.join(2.0)
        if self._process.is_alive():
            self._process.kill()
        self._shm.close()
        self._shm.unlink()


def _serve(conn, shm_name: str, options: dict, loop_input: bool = False) -> None:
    """Engine side: open the stream, then serve commands and publish meters until stopped."""
    from ..preset import PresetError, chain_from_preset
    from .session import LiveError, open_engine

    # The audio thread shares this process's GIL with the loop below, which prepares new chains
    # (seconds of Python and torch work). By default a thread waiting for the GIL gets it after
    # 5 ms, two 128-frame deadlines; ask for it back 100x sooner (preparing a chain then
    # takes longer, the audio thread waits less).
    sys.setswitchinterval(GIL_SWITCH_S)
    _realtime_control_thread()
    shm = shared_memory.SharedMemory(name=shm_name)
    views = _views(shm.buf)
    meters = views["scalars"]
    try:
        engine, info = open_engine(LiveOptions(**options))
    except LiveError as error:
        conn.send(("error", str(error)))
        del views, meters
        shm.close()
        return
    engine.loop_input = loop_input
    engine.block_counter = meters[:1]  # "blocks", written by the audio thread itself
    publisher = _Publisher(engine, views)
    engine.start()
    conn.send(("started", info))
    running, next_publish = True, 0.0
    while running:
        # Every Python step here competes with the audio thread for the GIL: sleep in poll,
        # and publish meters on a clock, not once per message.
        try:
            message = conn.recv() if conn.poll(max(0.0, next_publish - time.monotonic())) else None
        except (EOFError, OSError):  # the client has gone: stop
            message = ("stop",)
        if message is not None:
            try:
                if message[0] == "set":
                    engine.set_parameter(*message[1:])
                elif message[0] == "bypass":
                    engine.latest_chain[message[1]].bypass = message[2]
                elif message[0] == "chain":
                    engine.replace_chain(chain_from_preset(*message[1:]))
                    # The new chain's objects join those frozen at the start, so a garbage
                    # collection that the audio thread triggers never has to walk them.
                    gc.freeze()
                elif message[0] == "dsp":
                    conn.send(("dsp", engine.switch_dsp(message[1])))
                elif message[0] == "query":
                    conn.send(("state", _chain_state(engine.chain)))
                elif message[0] == "stop":
                    running = False
            except (ValueError, IndexError, RuntimeError, PresetError) as error:
                conn.send(("error", f"{message[0]}: {error}"))
        if time.monotonic() >= next_publish:
            publisher.publish()
            next_publish = time.monotonic() + PUBLISH_S
        if engine.finished.is_set():
            running = False
    engine.stop()
    publisher.publish()
    meters[METER_FIELDS.index("alive")] = 0.0
    conn.send(("stopped", {**info, **engine.meters.summary(), "latency_ms": engine.latency_ms}))
    del views, meters, publisher
    shm.close()


def _realtime_control_thread() -> None:
    """Run this (control) thread at the lowest realtime priority, below the audio thread's.

    While it holds the GIL (preparing a chain), the audio thread waits for it; on a busy
    machine an ordinary-priority thread can be preempted right then, stalling the audio
    thread behind other processes. Where realtime scheduling is not permitted, nothing changes.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except (OSError, AttributeError):
        pass


def _chain_state(chain) -> dict:
    """The playing chain as a preset, with each stage's current (ramped) values besides."""
    from ..preset import preset_dict

    state = preset_dict(chain)
    for stage, effect in zip(state["chain"], chain):
        stage["current"] = {name: effect.value(name) for name in effect.values}
    return state


def _tuner_reading(chain) -> tuple[float, float, float] | None:
    """(frequency Hz or 0 for no pitch, clarity 0..1, reference Hz) of the first ``tuner``
    stage, or None without one. Read defensively: a failing reading reads as no tuner."""
    for effect in chain:
        if getattr(effect, "type_name", "") != "tuner":
            continue
        try:
            reading = effect.reading()
            hz = reading.frequency_hz if reading.has_pitch else 0.0
            return float(hz or 0.0), float(reading.clarity), float(effect.get("reference_hz"))
        except Exception:  # noqa: BLE001 - a reading must never stop the engine
            return None
    return None


class _Publisher:
    """Writes the engine's meters, levels, spectrum and tuner into the shared block."""

    def __init__(self, engine, views: dict[str, np.ndarray]) -> None:
        self.engine, self.views = engine, views
        self._seen = 0  # output frames already measured
        self._updates = 0

    def publish(self) -> None:
        engine, views = self.engine, self.views
        _publish(engine, views["scalars"])
        scalars = dict(zip(METER_FIELDS, range(len(METER_FIELDS))))
        tap_in, tap_out = engine.input_tap, engine.output_tap
        channels = min(tap_out.channels, MAX_CHANNELS)
        fresh = max(min(tap_out.frames - self._seen, 8192), 1024)
        self._seen = tap_out.frames
        table = views["levels"].reshape(4, MAX_CHANNELS)
        for row, tap in ((0, tap_in), (2, tap_out)):
            peak, rms = levels(tap.latest(fresh)[:, :channels])
            table[row, : len(peak)], table[row + 1, : len(rms)] = peak, rms
        views["spectrum"][:] = spectrum_db(tap_out.latest(SPECTRUM_SIZE), SPECTRUM_SIZE)
        times = engine.meters.dsp_times_us(HISTORY_BLOCKS)
        views["history"][: len(times)] = times
        tuner = _tuner_reading(engine.chain)
        hz, clarity, reference = tuner if tuner else (0.0, -1.0, 0.0)  # clarity -1: no tuner
        meters = views["scalars"]
        meters[scalars["channels"]] = channels
        meters[scalars["tuner_hz"]], meters[scalars["tuner_clarity"]] = hz, clarity
        meters[scalars["tuner_reference_hz"]] = reference
        self._updates += 1
        meters[scalars["updates"]] = self._updates


def _publish(engine, meters: np.ndarray) -> None:
    summary = engine.meters.summary(RECENT_BLOCKS)
    values = {
        "blocks": summary["blocks"], "dsp_p50_us": summary["dsp_us"]["p50"],
        "dsp_p99_us": summary["dsp_us"]["p99"], "dsp_max_us": summary["dsp_us"]["max"],
        "deadline_us": summary["deadline_us"], "load_p99": summary["load_p99"],
        "xruns": summary["xruns"], "deadline_misses": summary["deadline_misses"],
        "faults": summary["faults"], "round_trip_ms": engine.latency_ms["round_trip"], "alive": 1.0,
    }
    meters[: len(values)] = [values[field] for field in METER_FIELDS[: len(values)]]
