"""The window's look: a dark Fusion palette and a few style rules."""
from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

ACCENT = "#4fb3ff"
WARN = "#ffb347"
BAD = "#ff5c5c"
GOOD = "#5ad17a"
TEXT_DIM = "#8b93a1"
BACKGROUND = "#16181d"
PANEL = "#1e2128"

STYLE = f"""
QWidget {{ font-size: 12px; }}
QGroupBox {{ border: 1px solid #2c313a; border-radius: 6px; margin-top: 14px; padding: 6px;
             background: {PANEL}; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 10px; padding: 0 4px; color: {TEXT_DIM};
                    font-weight: bold; letter-spacing: 1px; }}
QListWidget, QTreeWidget {{ background: #14161a; border: 1px solid #2c313a; border-radius: 4px; }}
QListWidget::item {{ border-bottom: 1px solid #23272e; }}
QListWidget::item:selected {{ background: #243447; }}
QTreeWidget::item {{ padding: 3px; }}
QToolBar {{ background: {PANEL}; border-bottom: 1px solid #2c313a; spacing: 6px; padding: 4px; }}
QPushButton {{ background: #2a2f38; border: 1px solid #3a404b; border-radius: 4px; padding: 4px 10px; }}
QPushButton:hover {{ background: #333a45; }}
QPushButton:checked {{ background: #3b2a2a; border-color: {WARN}; color: {WARN}; }}
QPushButton#start {{ background: #1f4d2e; border-color: {GOOD}; font-weight: bold; min-width: 70px; }}
QPushButton#start:checked {{ background: #5a2222; border-color: {BAD}; color: white; }}
QLabel#banner {{ background: #5a2222; color: white; padding: 6px 10px; border-radius: 4px; }}
QLabel#big {{ font-size: 20px; font-weight: bold; }}
QLabel#stat {{ font-family: monospace; font-size: 12px; }}
QComboBox, QDoubleSpinBox, QLineEdit {{ background: #14161a; border: 1px solid #3a404b;
                                        border-radius: 3px; padding: 2px 4px; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style, dark palette, the style rules above."""
    app.setStyle("Fusion")
    palette = QPalette()
    colors = {
        QPalette.ColorRole.Window: BACKGROUND, QPalette.ColorRole.WindowText: "#e3e6ea",
        QPalette.ColorRole.Base: "#14161a", QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.Text: "#e3e6ea", QPalette.ColorRole.Button: "#2a2f38",
        QPalette.ColorRole.ButtonText: "#e3e6ea", QPalette.ColorRole.Highlight: "#2f6ea3",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: "#e3e6ea", QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c6370"))
    app.setPalette(palette)
    app.setStyleSheet(STYLE)
