"""Parameter controls built from a ``Param`` declaration: a knob with typed entry."""
from __future__ import annotations

import math

from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import QDoubleSpinBox, QLabel, QSizePolicy, QVBoxLayout, QWidget

from rtfx.params import Param

from .theme import ACCENT, TEXT_DIM

ARC_DEGREES = 270.0


def to_normalized(param: Param, value: float) -> float:
    """``value`` as a knob position in [0, 1] (in ratios for log-scale parameters)."""
    lo, hi = param.minimum, param.maximum
    if hi <= lo:
        return 0.0
    if param.scale == "log":
        return math.log(value / lo) / math.log(hi / lo)
    return (value - lo) / (hi - lo)


def from_normalized(param: Param, position: float) -> float:
    """The value at knob position ``position`` in [0, 1]."""
    position = min(max(position, 0.0), 1.0)
    lo, hi = param.minimum, param.maximum
    if param.scale == "log":
        return lo * (hi / lo) ** position
    return lo + position * (hi - lo)


class Knob(QWidget):
    """A rotary control: drag up/down (Shift: fine), wheel, arrow keys; double-click resets.

    Emits ``moved(value)`` in the parameter's units whenever the user turns it.
    """

    moved = pyqtSignal(float)

    def __init__(self, param: Param, parent=None) -> None:
        super().__init__(parent)
        self.param = param
        self._position = to_normalized(param, param.default)
        self._drag_y: float | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(56, 56)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setToolTip(f"{param.doc}\nDrag, scroll or use the arrow keys; double-click resets to {param.default:g}")

    def sizeHint(self):
        from PyQt6.QtCore import QSize

        return QSize(60, 60)

    @property
    def value(self) -> float:
        return from_normalized(self.param, self._position)

    def set_value(self, value: float) -> None:
        """Show ``value`` without emitting ``moved``."""
        self._position = to_normalized(self.param, value)
        self.update()

    def turn_to(self, value: float) -> None:
        """Move the knob to ``value`` as a user would (emits ``moved``)."""
        self._turn(to_normalized(self.param, min(max(value, self.param.minimum), self.param.maximum)))

    def _turn(self, position: float) -> None:
        position = min(max(position, 0.0), 1.0)
        if position != self._position:
            self._position = position
            self.update()
            self.moved.emit(self.value)

    # -- input -----------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        self._drag_y = event.position().y()

    def mouseMoveEvent(self, event) -> None:
        if self._drag_y is None:
            return
        y = event.position().y()
        scale = 1000.0 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 200.0
        self._turn(self._position + (self._drag_y - y) / scale)
        self._drag_y = y

    def mouseReleaseEvent(self, event) -> None:
        self._drag_y = None

    def mouseDoubleClickEvent(self, event) -> None:
        self._turn(to_normalized(self.param, self.param.default))

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        self._turn(self._position + steps / 100.0)

    def keyPressEvent(self, event) -> None:
        step = {Qt.Key.Key_Up: 0.01, Qt.Key.Key_Right: 0.01, Qt.Key.Key_Down: -0.01, Qt.Key.Key_Left: -0.01,
                Qt.Key.Key_PageUp: 0.1, Qt.Key.Key_PageDown: -0.1}.get(event.key())
        if step is None:
            super().keyPressEvent(event)
        else:
            self._turn(self._position + step)

    # -- drawing ---------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(self.width(), self.height()) - 8
        rect = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        start = 225.0  # degrees, Qt counts counter-clockwise from 3 o'clock
        pen = QPen(QColor("#2b3038"), 5, cap=Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawArc(rect, int(start * 16), int(-ARC_DEGREES * 16))
        pen.setColor(QColor(ACCENT if self.isEnabled() else TEXT_DIM))
        painter.setPen(pen)
        painter.drawArc(rect, int(start * 16), int(-ARC_DEGREES * self._position * 16))
        inner = rect.adjusted(8, 8, -8, -8)
        painter.setPen(QPen(QColor("#0f1115"), 1))
        painter.setBrush(QColor("#3a404b" if self.hasFocus() else "#323741"))
        painter.drawEllipse(inner)
        angle = math.radians(start - ARC_DEGREES * self._position)
        center = inner.center()
        radius = inner.width() / 2 - 3
        tip = QPointF(center.x() + radius * math.cos(angle), center.y() - radius * math.sin(angle))
        painter.setPen(QPen(QColor("#e8eaed"), 2.5, cap=Qt.PenCapStyle.RoundCap))
        painter.drawLine(QPointF(center.x() + 0.35 * (tip.x() - center.x()), center.y() + 0.35 * (tip.y() - center.y())), tip)


def _decimals(param: Param) -> int:
    span = param.maximum - param.minimum
    if param.scale == "log" or span >= 100:
        return 1
    return 2 if span >= 2 else 3


class ParamControl(QWidget):
    """A parameter's name, knob and typed-entry box (with its unit); emits ``changed(value)``."""

    changed = pyqtSignal(float)

    def __init__(self, param: Param, value: float, parent=None) -> None:
        super().__init__(parent)
        self.param = param
        label = QLabel(_label(param.name))
        label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        label.setStyleSheet(f"color: {TEXT_DIM}; font-size: 11px;")
        label.setToolTip(param.doc)
        self.knob = Knob(param)
        self.entry = QDoubleSpinBox()
        self.entry.setRange(param.minimum, param.maximum)
        self.entry.setDecimals(_decimals(param))
        self.entry.setSuffix(f" {param.unit}" if param.unit else "")
        self.entry.setKeyboardTracking(False)  # typed values apply on Enter / focus out
        self.entry.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.entry.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.entry.setToolTip(f"{param.doc} [{param.minimum:g} .. {param.maximum:g}] {param.unit}")
        if param.scale == "log":
            self.entry.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self.entry.setFixedWidth(86)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addWidget(label)
        layout.addWidget(self.knob, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.entry, 0, Qt.AlignmentFlag.AlignHCenter)
        self.set_value(value)
        self.knob.moved.connect(self._from_knob)
        self.entry.valueChanged.connect(self._from_entry)

    @property
    def value(self) -> float:
        return self.knob.value

    def set_value(self, value: float) -> None:
        """Show ``value`` (no ``changed`` signal)."""
        self.knob.set_value(value)
        self.entry.blockSignals(True)
        self.entry.setValue(value)
        self.entry.blockSignals(False)

    def _from_knob(self, value: float) -> None:
        self.entry.blockSignals(True)
        self.entry.setValue(value)
        self.entry.blockSignals(False)
        self.changed.emit(value)

    def _from_entry(self, value: float) -> None:
        self.knob.set_value(value)
        self.changed.emit(value)


def _label(name: str) -> str:
    """``freq_hz`` -> ``freq``, ``gain_db`` -> ``gain``: the unit is shown by the entry."""
    head, _, tail = name.rpartition("_")
    return (head if head and tail in {"hz", "db", "ms", "s", "pct", "oct", "x"} else name).replace("_", " ")
