"""The live engine in a process of its own, driven by small control messages.

Why: a Qt event loop and a Python audio callback in one process share the GIL, so a busy GUI
delays the callback. Here the GUI (or any client) talks to an engine process (multiprocessing,
spawn) through a pipe, and reads its meters from shared memory, polled at any rate without a
lock (a torn read shows one stale number for one poll, never blocks the audio).

Messages (client -> engine): ``("set", stage, name, value)``, ``("bypass", stage, flag)``,
``("chain", preset_dict)``, ``("stop",)``. Replies (engine -> client): ``("started", info)``,
``("error", message)``, ``("stopped", report)``.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import asdict
from multiprocessing import shared_memory

import numpy as np

from .session import RECENT_BLOCKS, LiveOptions

#: Layout of the shared meters (float64 slots).
METER_FIELDS = ("blocks", "dsp_p50_us", "dsp_p99_us", "dsp_max_us", "deadline_us", "load_p99",
                "xruns", "deadline_misses", "faults", "round_trip_ms", "alive")


class EngineProcess:
    """Client side: start, control and watch a ``LiveEngine`` running in another process.

    Args:
        options: what to stream (as for ``rtfx live``); ``status`` output is off.
    """

    def __init__(self, options: LiveOptions) -> None:
        self.options = options
        self._shm = shared_memory.SharedMemory(create=True, size=8 * len(METER_FIELDS))
        self._meters = np.ndarray((len(METER_FIELDS),), dtype=np.float64, buffer=self._shm.buf)
        self._meters[:] = 0.0
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._received: list = []  # messages read from the pipe, not yet asked for
        self._process = context.Process(
            target=_serve, args=(child, self._shm.name, asdict(options)), name="rtfx-engine", daemon=True
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

    def set_bypass(self, stage: int, bypass: bool) -> None:
        self._conn.send(("bypass", stage, bool(bypass)))

    def replace_chain(self, preset: dict) -> None:
        """Swap in the chain of ``preset`` (a preset document), crossfaded in the engine."""
        self._conn.send(("chain", preset))

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

    def close(self) -> None:
        """End the process (if still there) and free the shared memory."""
        self._process.join(2.0)
        if self._process.is_alive():
            self._process.kill()
        self._shm.close()
        self._shm.unlink()


def _serve(conn, shm_name: str, options: dict) -> None:
    """Engine side: open the stream, then serve commands and publish meters until stopped."""
    from ..preset import PresetError, chain_from_preset
    from .session import LiveError, open_engine

    shm = shared_memory.SharedMemory(name=shm_name)
    meters = np.ndarray((len(METER_FIELDS),), dtype=np.float64, buffer=shm.buf)
    try:
        engine, info = open_engine(LiveOptions(**options))
    except LiveError as error:
        conn.send(("error", str(error)))
        shm.close()
        return
    engine.start()
    conn.send(("started", info))
    running = True
    while running:
        if conn.poll(0.1):
            message = conn.recv()
            try:
                if message[0] == "set":
                    engine.set_parameter(*message[1:])
                elif message[0] == "bypass":
                    engine.chain[message[1]].bypass = message[2]
                elif message[0] == "chain":
                    engine.replace_chain(chain_from_preset(message[1]))
                elif message[0] == "stop":
                    running = False
            except (ValueError, IndexError, PresetError) as error:
                conn.send(("error", f"{message[0]}: {error}"))
        _publish(engine, meters)
        if engine.finished.is_set():
            running = False
    engine.stop()
    _publish(engine, meters)
    meters[METER_FIELDS.index("alive")] = 0.0
    conn.send(("stopped", {**info, **engine.meters.summary(), "latency_ms": engine.latency_ms}))
    shm.close()


def _publish(engine, meters: np.ndarray) -> None:
    summary = engine.meters.summary(RECENT_BLOCKS)
    values = {
        "blocks": summary["blocks"], "dsp_p50_us": summary["dsp_us"]["p50"],
        "dsp_p99_us": summary["dsp_us"]["p99"], "dsp_max_us": summary["dsp_us"]["max"],
        "deadline_us": summary["deadline_us"], "load_p99": summary["load_p99"],
        "xruns": summary["xruns"], "deadline_misses": summary["deadline_misses"],
        "faults": summary["faults"], "round_trip_ms": engine.latency_ms["round_trip"], "alive": 1.0,
    }
    meters[:] = [values[field] for field in METER_FIELDS]
