"""Opening and saving presets in the rack window, with the unsaved-changes prompt."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QFileDialog, QMessageBox

from rtfx.preset import PresetError

from .document import RackDocument
from .engine_link import ASSETS
from .undo import EditCommand

PRESETS = ASSETS / "presets"


class PresetFiles:
    """The window's preset file actions (a mixin of ``MainWindow``: it uses the window's
    ``document``, ``path``, ``undo_stack``, ``rack`` and ``show_error``)."""

    def ask_unsaved(self) -> str:
        """Ask what to do with unsaved edits: "save", "discard" or "cancel"."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved changes", f"“{self.document.name}” has unsaved changes. Save them first?",
            buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current document (saved, discarded or clean)."""
        if self.undo_stack.isClean():
            return True
        answer = self.ask_unsaved()
        if answer == "save":
            return self.save()
        return answer == "discard"

    def load_document(self, document: RackDocument, path: Path | None, text: str) -> None:
        self.selected = 0 if document.stages else None
        self.path = path
        self.undo_stack.push(EditCommand(self, self.document.copy(), document, text))
        self.rack.show_document(self.document, self.selected)
        self._show_params()
        self.undo_stack.setClean()
        self._show_title()

    def load_preset_file(self, path: str | Path) -> bool:
        """Open a preset (asks first if there are unsaved edits); errors are shown, not raised."""
        if not self.maybe_save():
            return False
        try:
            document = RackDocument.from_file(path)
        except PresetError as error:
            self.show_error(str(error))
            return False
        self.load_document(document, Path(path), f"open {Path(path).name}")
        self.statusBar().showMessage(f"Loaded {path}", 4000)
        return True

    def new_document(self) -> None:
        if self.maybe_save():
            self.load_document(RackDocument(), None, "new preset")

    def save_preset_file(self, path: str | Path) -> bool:
        path = Path(path)
        try:
            self.document.save(path)
        except OSError as error:
            self.show_error(f"cannot save {path}: {error.strerror}")
            return False
        self.path = path
        self.undo_stack.setClean()
        self._show_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    def save(self) -> bool:
        return self.save_preset_file(self.path) if self.path and self.path.parent != PRESETS else self.save_as_dialog()

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open preset", str(PRESETS), "rtfx presets (*.json)")
        if path:
            self.load_preset_file(path)

    def save_as_dialog(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", str(Path.home() / f"{self.document.name}.json"),
                                              "rtfx presets (*.json)")
        return self.save_preset_file(path) if path else False
