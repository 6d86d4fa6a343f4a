"""The latency panel: per-block DSP time against the deadline, the stream's health, and a
CPU-vs-GPU measurement of the current chain on request."""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .measure import compare_devices
from .theme import ACCENT, BAD, GOOD, TEXT_DIM, WARN

STATS = (("p50", "dsp_p50_us", "{:.0f} µs"), ("p99", "dsp_p99_us", "{:.0f} µs"), ("max", "dsp_max_us", "{:.0f} µs"),
         ("deadline", "deadline_us", "{:.0f} µs"), ("load (p99)", "load_p99", "{:.1%}"),
         ("xruns", "xruns", "{:.0f}"), ("deadline misses", "deadline_misses", "{:.0f}"), ("faults", "faults", "{:.0f}"),
         ("blocks", "blocks", "{:.0f}"))


class LatencyPanel(QWidget):
    """Plot of the newest blocks' DSP time (µs) with the deadline line, and the numbers."""

    compare_finished = pyqtSignal(dict)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="#101216")
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.showGrid(x=False, y=True, alpha=0.15)
        self.plot.setLabel("left", "DSP time", units="s")
        self.plot.setLabel("bottom", "block (newest right)")
        self.plot.addLegend(offset=(-10, 4), labelTextColor=TEXT_DIM, colCount=3)
        self.curve = self.plot.plot(pen=pg.mkPen(ACCENT, width=1), name="per block")
        self.p99_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(WARN, width=1, style=pg.QtCore.Qt.PenStyle.DotLine))
        self.deadline_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(BAD, width=2, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.plot.addItem(self.p99_line)
        self.plot.addItem(self.deadline_line)
        self.plot.plot(pen=pg.mkPen(WARN, width=1, style=pg.QtCore.Qt.PenStyle.DotLine), name="p99")
        self.plot.plot(pen=pg.mkPen(BAD, width=2, style=pg.QtCore.Qt.PenStyle.DashLine), name="deadline")
        self.values: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setVerticalSpacing(2)
        for row, (title, key, _) in enumerate(STATS):
            name = QLabel(title)
            name.setStyleSheet(f"color: {TEXT_DIM};")
            value = QLabel("—")
            value.setObjectName("stat")
            self.values[key] = value
            grid.addWidget(name, row, 0)
            grid.addWidget(value, row, 1)
        self.compare_button = QPushButton("Measure CPU vs GPU")
        self.compare_button.setToolTip("Time the current chain block by block on each device (in a separate, "
                                       "low-priority process) to see what switching would buy")
        self.compare_result = QLabel("CPU vs GPU: not measured yet")
        self.compare_result.setWordWrap(True)
        self.compare_result.setStyleSheet(f"color: {TEXT_DIM};")
        side = QVBoxLayout()
        side.addLayout(grid)
        side.addWidget(self.compare_button)
        side.addWidget(self.compare_result)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.plot, 1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setFixedWidth(250)
        layout.addWidget(side_widget)
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._check_compare)

    def show_meters(self, meters: dict, history_us: np.ndarray) -> None:
        """New meters (``EngineProcess.meters()``) and the newest blocks' DSP times."""
        if len(history_us):
            self.curve.setData(np.arange(len(history_us)) - len(history_us), history_us * 1e-6)
        self.deadline_line.setValue(meters["deadline_us"] * 1e-6)
        self.p99_line.setValue(meters["dsp_p99_us"] * 1e-6)
        top = max(meters["deadline_us"] * 1.7, float(history_us.max()) * 1.05 if len(history_us) else 0)
        self.plot.setYRange(0, top * 1e-6, padding=0)
        for _, key, fmt in STATS:
            self.values[key].setText(fmt.format(meters[key]))
        load = meters["load_p99"]
        self.values["load_p99"].setStyleSheet(f"color: {GOOD if load < 0.5 else WARN if load < 0.85 else BAD};")
        for key in ("xruns", "deadline_misses", "faults"):
            self.values[key].setStyleSheet(f"color: {GOOD if meters[key] == 0 else BAD};")

    def clear(self) -> None:
        self.curve.setData([], [])
        for label in self.values.values():
            label.setText("—")
            label.setStyleSheet("")

    # -- CPU vs GPU ------------------------------------------------------------------------
    def start_compare(self, preset: dict, samplerate: int, blocksize: int, channels: int) -> None:
        """Measure ``preset`` on CPU and GPU in a worker process; the result is shown here."""
        if self._future is not None:
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        self.compare_button.setEnabled(False)
        self.compare_result.setText(f"measuring the chain at {blocksize} frames on CPU and GPU…")
        self._future = self._pool.submit(compare_devices, preset, samplerate, blocksize, channels)
        self._timer.start(200)

    @property
    def measuring(self) -> bool:
        return self._future is not None

    def _check_compare(self) -> None:
        if self._future is None or not self._future.done():
            return
        self._timer.stop()
        future, self._future = self._future, None
        self.compare_button.setEnabled(True)
        try:
            results = future.result()
        except Exception as error:  # noqa: BLE001 - a failed measurement is reported, not raised
            results = {"cpu": f"measurement failed: {error}", "cuda": ""}
        lines = []
        for device in ("cpu", "cuda"):
            result = results.get(device)
            if isinstance(result, dict):
                path = result.get("path", device)
                name = device.upper() + (f" ({path[len(device) + 1:]})" if path != device else "")
                lines.append(f"<b>{name}</b>: p50 {result['p50_us']:.0f} µs · p99 {result['p99_us']:.0f} µs · "
                             f"max {result['max_us']:.0f} µs · load {result['load_p99']:.0%}")
            else:
                lines.append(f"<b>{device.upper()}</b>: {result}")
        self.compare_result.setText("<br>".join(lines))
        self.compare_result.setStyleSheet("")
        self.compare_finished.emit(results)

    def shutdown(self) -> None:
        self._timer.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
