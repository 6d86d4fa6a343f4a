"""The rack: the effect palette, the chain's slots, and the selected slot's parameters.

These widgets only show a ``RackDocument`` and say what the user asked for (signals); the
window turns requests into undoable edits and sends them to the engine.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from PyQt6.QtCore import QMimeData, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractItemView, QComboBox, QGridLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
    QPushButton, QScrollArea, QSlider, QSpinBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

import rtfx
from rtfx.design import RBJ_KINDS
from rtfx.effect import MIX
from rtfx.preset_schema import FIELD_SCHEMAS

from .document import RackDocument, stage_title, stage_value
from .knob import ParamControl
from .theme import TEXT_DIM

EFFECT_MIME = "application/x-rtfx-effect"  # a palette entry being dragged: its type name
CATEGORY_ORDER = ("utility", "dynamics", "eq", "filter", "drive", "cabinet", "time", "modulation",
                  "reverb", "analysis", "neural")


def _first_line(cls) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


class Palette(QTreeWidget):
    """Every registered effect type, grouped by category; double-click, Enter or a drag into
    the rack adds one."""

    add_requested = pyqtSignal(str)  # type name

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setIndentation(12)
        groups: dict[str, list[str]] = defaultdict(list)
        for name, cls in rtfx.EFFECTS.items():
            groups[cls.category or "other"].append(name)
        order = [c for c in CATEGORY_ORDER if c in groups] + sorted(set(groups) - set(CATEGORY_ORDER))
        for category in order:
            top = QTreeWidgetItem([category.upper()])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            top.setForeground(0, self.palette().placeholderText())
            self.addTopLevelItem(top)
            for name in sorted(groups[category]):
                item = QTreeWidgetItem([name.replace("_", " ")])
                item.setData(0, Qt.ItemDataRole.UserRole, name)
                item.setToolTip(0, _first_line(rtfx.EFFECTS[name]))
                top.addChild(item)
            top.setExpanded(True)
        self.itemActivated.connect(self._activated)

    def type_names(self) -> list[str]:
        names = []
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            names += [top.child(j).data(0, Qt.ItemDataRole.UserRole) for j in range(top.childCount())]
        return names

    def selected_type(self) -> str | None:
        item = self.currentItem()
        return item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None

    def mimeData(self, items) -> QMimeData:
        data = QMimeData()
        name = items[0].data(0, Qt.ItemDataRole.UserRole) if items else None
        if name:
            data.setData(EFFECT_MIME, name.encode())
        return data

    def _activated(self, item: QTreeWidgetItem) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole)
        if name:
            self.add_requested.emit(name)


class SlotWidget(QWidget):
    """One slot: its number and name, a bypass switch, a mix slider and a remove button."""

    def __init__(self, index: int, stage: dict, parent=None) -> None:
        super().__init__(parent)
        self.index = index
        number = QLabel(f"{index + 1:>2}")
        number.setStyleSheet(f"color: {TEXT_DIM}; font-family: monospace;")
        self.title = QLabel(stage_title(stage))
        self.title.setStyleSheet("font-weight: bold;")
        self.bypass = QPushButton("Bypass")
        self.bypass.setCheckable(True)
        self.bypass.setChecked(bool(stage.get("bypass", False)))
        self.bypass.setToolTip("Bypass this effect (crossfaded, click-free)")
        self.bypass.setFixedWidth(64)
        self.mix = QSlider(Qt.Orientation.Horizontal)
        self.mix.setRange(0, 100)
        self.mix.setValue(round(100 * stage_value(stage, "mix")) if stage.get("type") != "chain" else 100)
        self.mix.setFixedWidth(80)
        self.mix.setToolTip("Wet/dry mix")
        self.mix_label = QLabel(f"{self.mix.value()}%")
        self.mix_label.setFixedWidth(34)
        self.mix_label.setStyleSheet(f"color: {TEXT_DIM};")
        self.mix.valueChanged.connect(lambda v: self.mix_label.setText(f"{v}%"))
        self.remove = QPushButton("✕")
        self.remove.setFixedWidth(28)
        self.remove.setToolTip("Remove this effect (Del)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(number)
        layout.addWidget(self.title, 1)
        layout.addWidget(QLabel("mix"))
        layout.addWidget(self.mix)
        layout.addWidget(self.mix_label)
        layout.addWidget(self.bypass)
        layout.addWidget(self.remove)
        if stage.get("bypass"):
            self.title.setStyleSheet(f"font-weight: bold; color: {TEXT_DIM};")


class RackView(QListWidget):
    """The chain as a vertical list of slots; drag a slot to move it."""

    reordered = pyqtSignal(list)  # new order: old indices
    insert_requested = pyqtSignal(str, int)  # type name dropped from the palette, at this row
    remove_requested = pyqtSignal(int)
    bypass_toggled = pyqtSignal(int, bool)
    mix_changed = pyqtSignal(int, float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSpacing(1)

    def show_document(self, document: RackDocument, selected: int | None) -> None:
        """Rebuild the slots for ``document`` (a structural change)."""
        self.blockSignals(True)
        self.clear()
        for index, stage in enumerate(document.stages):
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, index)
            slot = SlotWidget(index, stage)
            item.setSizeHint(slot.sizeHint())
            self.addItem(item)
            self.setItemWidget(item, slot)
            slot.bypass.toggled.connect(lambda on, i=index: self.bypass_toggled.emit(i, on))
            slot.mix.valueChanged.connect(lambda v, i=index: self.mix_changed.emit(i, v / 100))
            slot.remove.clicked.connect(lambda _=False, i=index: self.remove_requested.emit(i))
        if selected is not None and 0 <= selected < self.count():
            self.setCurrentRow(selected)
        self.blockSignals(False)

    def update_values(self, document: RackDocument) -> None:
        """Show new bypass/mix values without rebuilding (a live change)."""
        for index, stage in enumerate(document.stages):
            slot = self.slot(index)
            if slot is None:
                continue
            for widget, value in ((slot.bypass, bool(stage.get("bypass", False))),
                                  (slot.mix, round(100 * stage_value(stage, "mix")))):
                widget.blockSignals(True)
                widget.setChecked(value) if widget is slot.bypass else widget.setValue(value)
                widget.blockSignals(False)
            slot.mix_label.setText(f"{slot.mix.value()}%")
            slot.title.setStyleSheet(f"font-weight: bold;{f' color: {TEXT_DIM};' if stage.get('bypass') else ''}")

    def slot(self, index: int) -> SlotWidget | None:
        item = self.item(index)
        return self.itemWidget(item) if item is not None else None

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(EFFECT_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(EFFECT_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        if event.mimeData().hasFormat(EFFECT_MIME):  # from the palette: a new slot here
            row = self.indexAt(event.position().toPoint()).row()
            self.insert_requested.emit(bytes(event.mimeData().data(EFFECT_MIME)).decode(), row if row >= 0 else self.count())
            event.acceptProposedAction()
            return
        super().dropEvent(event)
        order = [self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())]
        if order != sorted(order):
            self.reordered.emit(order)

    def keyPressEvent(self, event) -> None:
        row = self.currentRow()
        if event.key() == Qt.Key.Key_Delete and row >= 0:
            self.remove_requested.emit(row)
        elif event.modifiers() & Qt.KeyboardModifier.ControlModifier and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            target = row + (1 if event.key() == Qt.Key.Key_Down else -1)
            if row >= 0 and 0 <= target < self.count():
                order = list(range(self.count()))
                order[row], order[target] = order[target], order[row]
                self.reordered.emit(order)
        else:
            super().keyPressEvent(event)


#: Choices of fields whose schema has no enum yet (the biquad's ``fields`` does not list them).
KNOWN_CHOICES = {"kind": RBJ_KINDS}


def _field_schema(cls, name: str) -> dict:
    schema = cls.fields.get(name) or FIELD_SCHEMAS.get(name) or {}
    if "enum" not in schema and name in KNOWN_CHOICES:
        schema = {**schema, "enum": list(KNOWN_CHOICES[name])}
    return schema


class ParamPanel(QWidget):
    """The selected slot's controls: its choices (enum fields) and a knob per parameter."""

    param_changed = pyqtSignal(int, str, float)  # stage, parameter, value
    field_changed = pyqtSignal(int, str, object)  # stage, construction field, value

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.index: int | None = None
        self.controls: dict[str, ParamControl] = {}
        self.title = QLabel("No effect selected")
        self.title.setObjectName("big")
        self.doc = QLabel("Add an effect from the palette (double-click), then select its slot.")
        self.doc.setStyleSheet(f"color: {TEXT_DIM};")
        self.doc.setWordWrap(True)
        self.choices = QHBoxLayout()
        self.grid = QGridLayout()
        self.grid.setHorizontalSpacing(6)
        inner = QWidget()
        inner_layout = QVBoxLayout(inner)
        inner_layout.addLayout(self.grid)
        inner_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.doc)
        layout.addLayout(self.choices)
        layout.addWidget(scroll, 1)

    def show_stage(self, index: int | None, stage: dict | None) -> None:
        """Build the controls for ``stage`` (None: nothing selected)."""
        self.index = index
        self.controls = {}
        for layout in (self.grid, self.choices):
            while layout.count():
                widget = layout.takeAt(0).widget()
                if widget is not None:
                    widget.deleteLater()
        if stage is None or stage.get("type") not in rtfx.EFFECTS:
            self.title.setText("No effect selected" if stage is None else stage_title(stage))
            self.doc.setText("Add an effect from the palette (double-click), then select its slot."
                             if stage is None else "A nested chain: edit it in its own preset.")
            return
        cls = rtfx.EFFECTS[stage["type"]]
        self.title.setText(f"{index + 1}. {stage_title(stage)}")
        self.doc.setText(_first_line(cls))
        self._add_choices(index, cls, stage)
        mix = replace(MIX, default=float(getattr(cls, "mix_default", MIX.default)))
        params = (*cls.params, mix)
        columns = 6 if len(params) > 8 else max(4, len(params))
        for n, param in enumerate(params):
            control = ParamControl(param, stage_value(stage, param.name))
            control.changed.connect(lambda value, name=param.name: self.param_changed.emit(self.index, name, value))
            self.controls[param.name] = control
            self.grid.addWidget(control, n // columns, n % columns)

    def _add_choices(self, index: int, cls, stage: dict) -> None:
        from rtfx.preset import construction_fields

        for name in construction_fields(cls):
            schema = _field_schema(cls, name)
            if "enum" in schema:
                box = QComboBox()
                values = list(schema["enum"])
                for value in values:
                    box.addItem("none" if value is None else str(value), value)
                if name in stage and stage[name] in values:
                    box.setCurrentIndex(values.index(stage[name]))
                box.currentIndexChanged.connect(lambda i, b=box, n=name: self.field_changed.emit(index, n, b.itemData(i)))
            elif schema.get("type") == "integer" and "maximum" in schema and name in stage:
                box = QSpinBox()
                box.setRange(schema.get("minimum", 0), schema["maximum"])
                box.setValue(int(stage[name]))
                box.setKeyboardTracking(False)
                box.valueChanged.connect(lambda v, n=name: self.field_changed.emit(index, n, v))
            elif schema.get("type") == "boolean":
                box = QPushButton(name.replace("_", " "))
                box.setCheckable(True)
                box.setChecked(bool(stage.get(name, False)))
                box.toggled.connect(lambda on, n=name: self.field_changed.emit(index, n, on))
                self.choices.addWidget(box)
                continue
            else:
                continue
            label = QLabel(name.replace("_", " "))
            label.setStyleSheet(f"color: {TEXT_DIM};")
            self.choices.addWidget(label)
            self.choices.addWidget(box)
        self.choices.addStretch(1)

    def update_values(self, stage: dict) -> None:
        """Show new parameter values without rebuilding (a live change, undo, redo)."""
        for name, control in self.controls.items():
            value = stage_value(stage, name)
            if abs(control.value - value) > 1e-9 * max(1.0, abs(value)):
                control.set_value(value)
