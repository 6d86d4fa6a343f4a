"""Undo steps of the rack window: the document before and after an edit."""
from __future__ import annotations

import time

from PyQt6.QtGui import QUndoCommand

from .document import RackDocument

MERGE_SECONDS = 1.5  # knob moves of one parameter closer than this are one undo step


class EditCommand(QUndoCommand):
    """One edit: the document before and after. Moves of one control merge into one step."""

    def __init__(self, window, before: RackDocument, after: RackDocument, text: str,
                 merge_key: tuple | None = None) -> None:
        super().__init__(text)
        self.window, self.before, self.after = window, before, after
        self.merge_key = merge_key
        self.when = time.monotonic()

    def id(self) -> int:
        return 1 if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, EditCommand) or other.merge_key != self.merge_key or other.when - self.when > MERGE_SECONDS:
            return False
        self.after, self.when = other.after, other.when
        return True

    def redo(self) -> None:
        self.window.show_document(self.after)

    def undo(self) -> None:
        self.window.show_document(self.before)
