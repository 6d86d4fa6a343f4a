"""The window's side of the engine: start/stop an ``EngineProcess`` without blocking Qt,
forward edits as engine messages, and host the virtual device when asked.

Starting an engine process takes seconds (spawn, torch import, chain warm-up): it runs on a
helper thread and reports back through Qt signals. Everything else is a non-blocking pipe
send or a shared-memory read.
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from rtfx.live.process import EngineProcess
from rtfx.live.session import LiveOptions

from .document import RackDocument, live_changes

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FLUSH_MS = 16  # edits reach the engine at most this often
SWAP_S = 0.25  # at most one chain swap (prepared by the engine, seconds of work) this often
DEMO_INPUTS = {"Demo: guitar DI (looped)": ASSETS / "audio" / "guitar_di.wav",
               "Demo: voice (looped)": ASSETS / "audio" / "voice.wav"}


@dataclass
class StreamSettings:
    """What the audio bar asks for.

    Args:
        virtual: stream on a JACK dummy server this window starts (no sound card needed).
        device: PortAudio device index (None: the default, or the virtual device).
        input_file: a file played (looped) into the chain instead of the device's input.
    """

    virtual: bool = True
    device: int | None = None
    samplerate: int = 48000
    blocksize: int = 256
    channels: int = 2
    input_channels: list[int] = field(default_factory=lambda: [1])
    dsp: str = "cpu"
    input_file: Path | None = DEMO_INPUTS["Demo: guitar DI (looped)"]


class EngineLink(QObject):
    """Owns the engine process (and the virtual server) for the window."""

    started = pyqtSignal(dict)  # the engine's start info
    failed = pyqtSignal(str)  # could not start, or died
    stopped = pyqtSignal(dict)  # final report
    message = pyqtSignal(str)  # an engine error (a rejected edit...)
    dsp_changed = pyqtSignal(str)  # how the chain runs after a DSP switch ("cuda graph"...)
    _start_done = pyqtSignal(object, object)  # (EngineProcess or None, info or error text)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.engine: EngineProcess | None = None
        self.settings: StreamSettings | None = None
        self.starting = False
        self._server = None  # VirtualDevice while the virtual device is in use
        self._server_key = None
        self._sent: RackDocument | None = None  # what the engine plays (as last sent)
        self._pending: RackDocument | None = None  # edits made while starting
        self._presets = tempfile.TemporaryDirectory(prefix="rtfx-gui-")
        self._start_thread: threading.Thread | None = None
        self._starting_engine: EngineProcess | None = None  # set by the start thread
        self._start_done.connect(self._on_start_done)
        # Edits are sent on a clock: a knob sweep of hundreds of moves a second becomes ~60
        # messages a second, and a burst of structural edits one chain swap per SWAP_S.
        self._settings_due: dict[tuple[int, str], float] = {}
        self._swap_due: RackDocument | None = None
        self._last_swap = 0.0
        self._flush_timer = QTimer(self)
        self._flush_timer.timeout.connect(self.flush)
        self._flush_timer.start(FLUSH_MS)

    @property
    def running(self) -> bool:
        return self.engine is not None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, settings: StreamSettings, document: RackDocument) -> None:
        """Start streaming ``document`` (returns at once; ``started`` or ``failed`` follows)."""
        if self.engine is not None or self.starting:
            return
        self.starting = True
        self.settings = settings
        try:
            self._prepare_device(settings)
        except RuntimeError as error:
            self.starting = False
            self.failed.emit(f"virtual device: {error}")
            return
        path = Path(self._presets.name) / "start.json"
        path.write_text(json.dumps(document.to_preset()))
        options = LiveOptions(
            preset=path, device=None if settings.virtual else settings.device,
            samplerate=settings.samplerate, blocksize=settings.blocksize, channels=settings.channels,
            input_channels=settings.input_channels, dsp=settings.dsp, input_file=settings.input_file,
            status=False,
        )
        self._pending, started_with = None, document.copy()

        def run() -> None:
            engine = EngineProcess(options, loop_input=options.input_file is not None)
            self._starting_engine = engine
            try:
                info = engine.start()
            except (RuntimeError, OSError) as error:
                self._start_done.emit(None, str(error))
                return
            info["document"] = started_with
            self._start_done.emit(engine, info)

        self._start_thread = threading.Thread(target=run, name="rtfx-gui-start", daemon=True)
        self._start_thread.start()

    def _prepare_device(self, settings: StreamSettings) -> None:
        """Start (or restart, for new rate/block size) the virtual server; stop it if unused."""
        key = (settings.samplerate, settings.blocksize)
        if self._server is not None and (not settings.virtual or key != self._server_key):
            self._server.stop()
            self._server = None
        if settings.virtual and self._server is None:
            from .virtual_device import VirtualDevice

            server = VirtualDevice(samplerate=settings.samplerate, period=settings.blocksize)
            server.start()
            self._server, self._server_key = server, key

    def _on_start_done(self, engine, info) -> None:
        self.starting = False
        if engine is None:
            self.failed.emit(f"cannot start the stream: {info}")
            return
        self.engine = engine
        self._sent = info.pop("document")
        self.started.emit(info)
        if self._pending is not None:
            self.apply(self._pending)

    def switch_dsp(self, dsp: str) -> None:
        """Move the playing chain to "cpu" or "cuda" without stopping (shadowed, crossfaded)."""
        if self.engine is not None and self.settings is not None and dsp != self.settings.dsp:
            self.engine.switch_dsp(dsp)
            self.settings = replace(self.settings, dsp=dsp)

    def stop(self) -> dict | None:
        """Stop streaming (waits for the engine's report, a fraction of a second)."""
        engine, self.engine = self.engine, None
        self._settings_due.clear()
        self._swap_due = None
        if engine is None:
            return None
        report = engine.stop() or {}
        self.stopped.emit(report)
        return report

    def abandon(self) -> None:
        """The device is gone: end the engine at once (its stream cannot be stopped cleanly)
        and drop the virtual server, so the next start begins afresh."""
        engine, self.engine = self.engine, None
        self._settings_due.clear()
        self._swap_due = None
        if engine is not None:
            engine.kill()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def shutdown(self) -> None:
        """Stop streaming and the virtual server (window closing); waits for a start in
        progress to finish first, so no engine process is left behind."""
        if self._start_thread is not None and self._start_thread.is_alive():
            self._start_thread.join(60)
            if self.engine is None and self._starting_engine is not None and self._starting_engine.is_alive():
                self._starting_engine.stop()
        self.stop()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._presets.cleanup()

    # -- edits ---------------------------------------------------------------------------
    def apply(self, document: RackDocument) -> None:
        """Make the engine play ``document``: live messages when only values changed, else a
        whole-chain swap (prepared and crossfaded in by the engine)."""
        if self.engine is None:
            self._pending = document.copy() if self.starting else None
            return
        changes = live_changes(self._sent, document)
        if changes is None:
            self._settings_due.clear()  # the new chain carries every value
            self._swap_due = document.copy()
        else:
            for change in changes:
                if change[0] == "set":
                    self._settings_due[change[1:3]] = change[3]
                else:
                    self.engine.set_bypass(*change[1:])
        self._sent = document.copy()

    def flush(self, force: bool = False) -> None:
        """Send the edits that are due (at most one chain swap per ``SWAP_S``)."""
        if self.engine is None:
            return
        now = time.monotonic()
        if self._swap_due is not None and (force or now - self._last_swap >= SWAP_S):
            self.engine.replace_chain(self._swap_due.to_preset())
            self._swap_due, self._last_swap = None, now
        if self._swap_due is None:
            for (stage, name), value in self._settings_due.items():
                self.engine.set_parameter(stage, name, value)
            self._settings_due.clear()

    def poll(self) -> dict | None:
        """The engine's meters (None when not streaming); forwards its error messages, and
        reports an engine that died."""
        if self.engine is None:
            return None
        for kind, payload in self.engine.messages():
            if kind == "error":
                self.message.emit(payload)
            elif kind == "dsp":
                self.dsp_changed.emit(payload)
        meters = self.engine.meters()
        if not meters["alive"] and not self.engine.is_alive():
            self.engine.close()
            self.engine = None
            self.failed.emit("the engine process stopped unexpectedly (device lost?)")
            return None
        return meters
