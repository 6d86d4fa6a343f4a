"""Level meters (peak and RMS per channel, clip lights), the output spectrum, the tuner."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QPainter
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .theme import ACCENT, BAD, GOOD, TEXT_DIM, WARN

FLOOR_DB = -60.0
CLIP = 0.999  # linear peak that lights the clip indicator (the engine's ceiling is 1.0)


NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def name_pitch(frequency_hz: float, reference_hz: float = 440.0) -> tuple[str, int, float]:
    """``(note, octave, cents)``: the nearest equal-tempered note (A4 = ``reference_hz``)."""
    midi = 69 + 12 * math.log2(frequency_hz / reference_hz)
    nearest = round(midi)
    return NOTE_NAMES[nearest % 12], nearest // 12 - 1, 100 * (midi - nearest)


def to_db(linear: float) -> float:
    return 20 * math.log10(linear) if linear > 1e-6 else -120.0


class LevelMeter(QWidget):
    """Vertical bars, one per channel: RMS filled, peak as a line with a short hold, a clip
    light on top that stays lit until clicked."""

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.peak_db = [FLOOR_DB, FLOOR_DB]
        self.rms_db = [FLOOR_DB, FLOOR_DB]
        self.hold_db = [FLOOR_DB, FLOOR_DB]
        self.clipped = [False, False]
        self.setMinimumSize(56, 160)
        self.setToolTip(f"{title} peak (line) and RMS (bar), dBFS; click to clear the clip lights")

    def show_levels(self, peak: np.ndarray, rms: np.ndarray) -> None:
        """New linear peak and RMS per channel; falls with ~20 dB/s ballistics."""
        channels = len(peak)
        if channels != len(self.peak_db):
            self.peak_db = [FLOOR_DB] * channels
            self.rms_db = [FLOOR_DB] * channels
            self.hold_db = [FLOOR_DB] * channels
            self.clipped = [False] * channels
        for c in range(channels):
            self.peak_db[c] = max(to_db(peak[c]), self.peak_db[c] - 1.5)
            self.rms_db[c] = max(to_db(rms[c]), self.rms_db[c] - 1.5)
            self.hold_db[c] = max(self.peak_db[c], self.hold_db[c] - 0.3)
            self.clipped[c] = self.clipped[c] or peak[c] >= CLIP
        self.update()

    def mousePressEvent(self, event) -> None:
        self.clipped = [False] * len(self.clipped)
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSize(8)
        painter.setFont(font)
        channels = len(self.peak_db)
        top, bottom = 30.0, self.height() - 18.0
        painter.setPen(QColor(TEXT_DIM))
        painter.drawText(QRectF(0, bottom + 2, self.width(), 16), Qt.AlignmentFlag.AlignCenter, self.title)
        width = (self.width() - 8 - 4 * (channels - 1)) / channels
        for c in range(channels):
            x = 4 + c * (width + 4)
            painter.fillRect(QRectF(x, top, width, bottom - top), QColor("#101216"))
            for db in (-6, -12, -24, -48):
                y = self._y(db, top, bottom)
                painter.fillRect(QRectF(x, y, width, 1), QColor("#262a31"))
            y = self._y(self.rms_db[c], top, bottom)
            color = QColor(GOOD if self.rms_db[c] < -12 else WARN if self.rms_db[c] < -3 else BAD)
            painter.fillRect(QRectF(x, y, width, bottom - y), color)
            y = self._y(self.hold_db[c], top, bottom)
            painter.fillRect(QRectF(x, y - 1, width, 2), QColor("#e8eaed"))
            painter.setBrush(QColor(BAD if self.clipped[c] else "#3a2222"))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(QRectF(x, 4, width, 10), 2, 2)
            painter.setPen(QColor(TEXT_DIM))
            shown = self.hold_db[c]
            painter.drawText(QRectF(x - 4, 15, width + 8, 14), Qt.AlignmentFlag.AlignCenter,
                             "-inf" if shown <= FLOOR_DB else f"{shown:.0f}")

    @staticmethod
    def _y(db: float, top: float, bottom: float) -> float:
        fraction = (min(max(db, FLOOR_DB), 0.0) - FLOOR_DB) / -FLOOR_DB
        return bottom - fraction * (bottom - top)


class SpectrumView(pg.PlotWidget):
    """The output spectrum, dBFS over a log frequency axis (smoothed between updates)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent, background="#101216")
        self.setLogMode(x=True, y=False)
        self.setYRange(-100, 0, padding=0)
        self.setXRange(math.log10(20), math.log10(20000), padding=0)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.showGrid(x=True, y=True, alpha=0.15)
        self.setLabel("bottom", "Hz")
        self.getAxis("left").setWidth(34)
        self.curve = self.plot(pen=pg.mkPen(ACCENT, width=1.5), fillLevel=-100, brush=(79, 179, 255, 40))
        self._bins: np.ndarray | None = None
        self._shown: np.ndarray | None = None

    def show_spectrum(self, spectrum_db: np.ndarray, samplerate: float) -> None:
        """``spectrum_db``: bins from 0 Hz to Nyquist."""
        if self._bins is None or len(self._bins) != len(spectrum_db):
            self._bins = np.linspace(0, samplerate / 2, len(spectrum_db))
            self._pick = np.unique(np.geomspace(1, len(spectrum_db) - 1, 400).astype(int))
            self._shown = None
        values = spectrum_db[self._pick]
        self._shown = values if self._shown is None else np.maximum(values, self._shown - 3.0)
        self.curve.setData(self._bins[self._pick], self._shown)


class TunerView(QWidget):
    """The tuner's note, cents and frequency (or how to get one)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.note = QLabel("—")
        self.note.setObjectName("big")
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = QLabel("add a tuner (analysis) to the chain")
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setStyleSheet(f"color: {TEXT_DIM};")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.note)
        layout.addWidget(self.detail)

    def show_reading(self, frequency_hz: float, clarity: float, reference_hz: float) -> None:
        """``clarity`` < 0: no tuner in the chain; ``frequency_hz`` 0: no clear pitch."""
        if clarity < 0:
            self.note.setText("—")
            self.detail.setText("add a tuner (analysis) to the chain")
        elif frequency_hz <= 0:
            self.note.setText("·")
            self.detail.setText("no clear pitch")
        else:
            note, octave, cents = name_pitch(frequency_hz, reference_hz or 440.0)
            color = GOOD if abs(cents) < 5 else WARN if abs(cents) < 20 else BAD
            self.note.setText(f"<span style='color:{color}'>{note}{octave}</span>")
            self.detail.setText(f"{cents:+.0f} cents · {frequency_hz:.1f} Hz")
