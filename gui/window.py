"""The main window: audio bar, palette, rack, parameters, meters, spectrum, tuner, latency.

Every edit is an undoable snapshot of the ``RackDocument``; showing a snapshot updates the
widgets and sends the engine the difference (``EngineLink.apply``). The window polls the
engine's shared-memory meters on a timer; it never touches audio itself.
"""
from __future__ import annotations

import time
from pathlib import Path

from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence, QUndoStack
from PyQt6.QtWidgets import (
    QGroupBox, QHBoxLayout, QLabel, QMainWindow, QPushButton, QSplitter, QVBoxLayout, QWidget,
)

from rtfx.preset import PresetError

from .audio_bar import AudioBar
from .document import RackDocument, live_changes, new_stage
from .engine_link import EngineLink
from .latency import LatencyPanel
from .meters import LevelMeter, SpectrumView, TunerView
from .preset_files import PRESETS, PresetFiles
from .rack import Palette, ParamPanel, RackView
from .undo import EditCommand

DEFAULT_PRESET = PRESETS / "guitar_demo.json"
POLL_MS = 33  # meters refresh (~30 Hz)
STALL_SECONDS = 3.0  # no new blocks for this long while streaming: the device is gone


def _group(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 10, 6, 6)
    layout.addWidget(widget)
    return box


class MainWindow(PresetFiles, QMainWindow):
    """The rack window. ``errors`` keeps every error shown (newest last)."""

    def __init__(self) -> None:
        super().__init__()
        self.document = RackDocument()
        self.path: Path | None = None
        self.selected: int | None = None
        self.errors: list[str] = []
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(lambda clean: self.setWindowModified(not clean))
        self.link = EngineLink(self)
        self.link.started.connect(self._on_started)
        self.link.failed.connect(self._on_failed)
        self.link.message.connect(self.show_error)
        self.link.dsp_changed.connect(lambda path: self.statusBar().showMessage(f"DSP moved: {path}"))
        self._last_blocks, self._last_progress = 0.0, time.monotonic()
        self._polls = 0
        self._faults = 0.0
        self._build()
        self._menus()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.poll_engine)
        self.timer.start(POLL_MS)
        self.resize(1500, 940)
        self._show_title()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.audio_bar = AudioBar()
        self.audio_bar.dsp_requested.connect(self.link.switch_dsp)
        self.audio_bar.start_requested.connect(self.start_stream)
        self.audio_bar.stop_requested.connect(self.stop_stream)
        toolbar = self.addToolBar("Audio")
        toolbar.setMovable(False)
        toolbar.addWidget(self.audio_bar)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner_close = QPushButton("Dismiss")
        self.banner_close.clicked.connect(self.clear_error)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close)
        self.banner.hide()
        self.banner_close.hide()

        self.palette_view = Palette()
        self.palette_view.add_requested.connect(self.add_effect)
        add_button = QPushButton("Add to rack")
        add_button.clicked.connect(lambda: self.palette_view.selected_type() and self.add_effect(self.palette_view.selected_type()))
        palette_box = QWidget()
        palette_layout = QVBoxLayout(palette_box)
        palette_layout.setContentsMargins(0, 0, 0, 0)
        palette_layout.addWidget(self.palette_view)
        palette_layout.addWidget(add_button)

        self.rack = RackView()
        self.rack.currentRowChanged.connect(self.select)
        self.rack.reordered.connect(self.reorder)
        self.rack.insert_requested.connect(self.add_effect)
        self.rack.remove_requested.connect(self.remove_effect)
        self.rack.bypass_toggled.connect(self.set_bypass)
        self.rack.mix_changed.connect(lambda i, v: self.set_param(i, "mix", v))
        self.params = ParamPanel()
        self.params.param_changed.connect(self.set_param)
        self.params.field_changed.connect(self.set_field)

        self.in_meter = LevelMeter("IN")
        self.out_meter = LevelMeter("OUT")
        self.tuner = TunerView()
        meters = QWidget()
        meters_layout = QHBoxLayout(meters)
        meters_layout.setContentsMargins(0, 0, 0, 0)
        meters_layout.addWidget(self.in_meter)
        meters_layout.addWidget(self.out_meter)
        self.spectrum = SpectrumView()
        self.latency = LatencyPanel()
        self.latency.compare_button.clicked.connect(self.compare_devices)

        center = QSplitter(Qt.Orientation.Vertical)
        center.addWidget(_group("RACK  ·  drag to reorder, Del removes", self.rack))
        center.addWidget(_group("PARAMETERS", self.params))
        center.setSizes([330, 300])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(_group("LEVELS", meters))
        right.addWidget(_group("TUNER", self.tuner))
        right.addWidget(_group("OUTPUT SPECTRUM", self.spectrum))
        right.setSizes([260, 90, 280])
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(_group("EFFECTS", palette_box))
        top.addWidget(center)
        top.addWidget(right)
        top.setSizes([210, 760, 430])
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        main.addWidget(_group("LATENCY  ·  DSP time per block vs deadline", self.latency))
        main.setSizes([640, 250])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(banner_row)
        layout.addWidget(main, 1)
        self.setCentralWidget(central)
        self.statusBar().showMessage("Stopped. Pick a device and press Start.")

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (("&New", QKeySequence.StandardKey.New, self.new_document),
                                     ("&Open preset…", QKeySequence.StandardKey.Open, self.open_dialog),
                                     ("&Save", QKeySequence.StandardKey.Save, self.save),
                                     ("Save &as…", QKeySequence.StandardKey.SaveAs, self.save_as_dialog)):
            action = QAction(text, self)
            action.setShortcut(shortcut)
            action.triggered.connect(slot)
            file_menu.addAction(action)
        self.presets_menu = file_menu.addMenu("&Bundled presets")
        for path in sorted(PRESETS.glob("*.json")):
            action = QAction(path.stem.replace("_", " "), self)
            action.triggered.connect(lambda _=False, p=path: self.load_preset_file(p))
            self.presets_menu.addAction(action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        edit_menu = self.menuBar().addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)
        audio_menu = self.menuBar().addMenu("&Audio")
        rescan = QAction("&Rescan devices", self)
        rescan.triggered.connect(lambda: self.audio_bar.refresh())
        audio_menu.addAction(rescan)

    def _show_title(self) -> None:
        name = self.document.name or "Untitled"
        where = f" — {self.path.name}" if self.path else ""
        self.setWindowTitle(f"{name}[*]{where} — rtfx rack")

    # -- edits -------------------------------------------------------------------------------
    def edit(self, after: RackDocument, text: str, merge_key: tuple | None = None) -> bool:
        """Apply ``after`` as one undoable edit; a chain that cannot be built is refused."""
        if live_changes(self.document, after) is None:
            try:
                after.check()
            except PresetError as error:
                self.show_error(f"{text}: {error}")
                return False
        self.undo_stack.push(EditCommand(self, self.document.copy(), after, text, merge_key))
        return True

    def show_document(self, document: RackDocument) -> None:
        """Show ``document`` and make the engine play it (used by undo/redo too)."""
        rebuild = live_changes(self.document, document) is None
        self.document = document.copy()
        if self.selected is not None and self.selected >= len(document.stages):
            self.selected = len(document.stages) - 1 if document.stages else None
        if rebuild:
            self.rack.show_document(self.document, self.selected)
            self._show_params()
        else:
            self.rack.update_values(self.document)
            if self.selected is not None:
                self.params.update_values(self.document.stages[self.selected])
        self.link.apply(self.document)
        self._show_title()

    def _show_params(self) -> None:
        stage = self.document.stages[self.selected] if self.selected is not None else None
        self.params.show_stage(self.selected, stage)

    def select(self, index: int) -> None:
        self.selected = index if 0 <= index < len(self.document.stages) else None
        self._show_params()

    def add_effect(self, type_name: str, at: int | None = None) -> None:
        """Add ``type_name`` at slot ``at`` (default: after the selected slot, or at the end)
        and select it."""
        after = self.document.copy()
        if at is None:
            at = len(after.stages) if self.selected is None else self.selected + 1
        try:
            after.stages.insert(at, new_stage(type_name))
        except (ValueError, TypeError, KeyError) as error:
            self.show_error(f"cannot add {type_name}: {error}")
            return
        self.selected = at
        self.edit(after, f"add {type_name}")

    def remove_effect(self, index: int) -> None:
        after = self.document.copy()
        removed = after.stages.pop(index)
        if self.selected is not None and self.selected >= index:
            self.selected = max(0, self.selected - 1) if after.stages else None
        self.edit(after, f"remove {removed['type']}")

    def move_effect(self, index: int, target: int) -> None:
        """Move the slot at ``index`` to position ``target`` (what a drag does)."""
        order = list(range(len(self.document.stages)))
        order.insert(target, order.pop(index))
        self.reorder(order)

    def reorder(self, order: list) -> None:
        """New slot order, as old indices (a drag, or Ctrl+Up/Down)."""
        after = self.document.copy()
        after.stages = [self.document.stages[i] for i in order]
        if self.selected is not None and self.selected in order:
            self.selected = order.index(self.selected)
        if not self.edit(after, "reorder"):
            self.rack.show_document(self.document, self.selected)

    def set_bypass(self, index: int, bypass: bool) -> None:
        after = self.document.copy()
        if bypass:
            after.stages[index]["bypass"] = True
        else:
            after.stages[index].pop("bypass", None)
        self.edit(after, f"{'bypass' if bypass else 'enable'} {after.stages[index]['type']}")

    def set_param(self, index: int, name: str, value: float) -> None:
        """A knob, typed entry or mix slider moved (ramped in the engine, no click)."""
        after = self.document.copy()
        after.stages[index][name] = float(value)
        self.edit(after, f"{after.stages[index]['type']} {name}", merge_key=("param", index, name))

    def set_field(self, index: int, name: str, value) -> None:
        """A construction choice changed (kind, mode...): the effect is rebuilt and swapped in."""
        after = self.document.copy()
        if value is None:
            after.stages[index].pop(name, None)
        else:
            after.stages[index][name] = value
        if not self.edit(after, f"{after.stages[index]['type']} {name}"):
            self._show_params()

    # -- stream --------------------------------------------------------------------------------
    def start_stream(self) -> None:
        try:
            settings = self.audio_bar.settings()
        except ValueError as error:
            self.show_error(str(error))
            return
        self.audio_bar.set_starting()
        self.statusBar().showMessage("Starting the engine…")
        self.link.start(settings, self.document)

    def stop_stream(self) -> None:
        report = self.link.stop()
        self.audio_bar.set_running(False)
        self.latency.clear()
        if report:
            self.statusBar().showMessage(
                f"Stopped after {report.get('blocks', 0)} blocks: {report.get('deadline_misses', 0)} deadline misses, "
                f"{report.get('xruns', 0)} xruns.")

    def _on_started(self, info: dict) -> None:
        self.audio_bar.set_running(True, self.link.engine.meters()["round_trip_ms"] or None)
        self._last_blocks, self._last_progress = 0.0, time.monotonic()
        self._faults = 0.0
        device = info["device"]
        source = Path(info["input_file"]).name if info.get("input_file") else "device input"
        self.statusBar().showMessage(
            f"Streaming on {device['name']} ({device['hostapi']}), {info['samplerate']} Hz, {info['blocksize']} frames, "
            f"DSP: {info.get('dsp_path', info['dsp_device'])}; input: {source}")

    def _on_failed(self, message: str) -> None:
        self.audio_bar.set_running(False)
        self.show_error(message)
        self.statusBar().showMessage("Stopped.")

    def poll_engine(self) -> None:
        """Refresh meters, spectrum, tuner and the latency panel from the engine."""
        meters = self.link.poll()
        if meters is None:
            return
        self._polls += 1
        engine = self.link.engine
        self.audio_bar.latency.setText(f"latency {meters['round_trip_ms']:.1f} ms")
        levels = engine.levels()
        if len(levels["in_peak"]):
            self.in_meter.show_levels(levels["in_peak"], levels["in_rms"])
            self.out_meter.show_levels(levels["out_peak"], levels["out_rms"])
        self.tuner.show_reading(meters["tuner_hz"], meters["tuner_clarity"], meters["tuner_reference_hz"])
        if self._polls % 2 == 0:  # plots at ~15 Hz
            self.spectrum.show_spectrum(engine.spectrum(), self.link.settings.samplerate)
            self.latency.show_meters(meters, engine.dsp_history())
        if meters["faults"] > self._faults:
            self.show_error(f"the chain failed on {meters['faults'] - self._faults:.0f} block(s) and output silence "
                            "there (an effect raised, or produced NaN/Inf); check the last edit")
        self._faults = meters["faults"]
        now = time.monotonic()
        if meters["blocks"] != self._last_blocks:
            self._last_blocks, self._last_progress = meters["blocks"], now
        elif now - self._last_progress > STALL_SECONDS:
            self.link.abandon()
            self.audio_bar.set_running(False)
            self.latency.clear()
            self.show_error("the audio device stopped delivering blocks (disconnected?); the stream was stopped")

    def compare_devices(self) -> None:
        settings = self.link.settings or self.audio_bar.settings()
        self.latency.start_compare(self.document.to_preset(), settings.samplerate, settings.blocksize, settings.channels)

    # -- errors ----------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        """Show an error in the window (banner and status bar); never raises."""
        self.errors.append(message)
        first = message.strip().splitlines()[0] if message.strip() else "error"
        self.banner.setText(f"⚠  {first}")
        self.banner.setToolTip(message)
        self.banner.show()
        self.banner_close.show()
        self.statusBar().showMessage(first, 10000)

    def clear_error(self) -> None:
        self.banner.hide()
        self.banner_close.hide()

    def closeEvent(self, event) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.timer.stop()
        self.latency.shutdown()
        self.link.shutdown()
        event.accept()
