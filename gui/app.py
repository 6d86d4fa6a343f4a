"""Start the rack window: ``rtfx gui`` / ``python -m gui`` (see ``--help``)."""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

_app = None  # the QApplication, once run() made it


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtfx gui", description="The rtfx rack window: edit a chain live, "
                                     "watch its CPU/GPU timing. Without a sound card it offers a virtual device.")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The window's options (shared with ``rtfx gui``)."""
    parser.add_argument("--preset", type=Path, help="preset to open (default: the bundled guitar demo)")
    parser.add_argument("--start", action="store_true", help="start streaming at once")
    parser.add_argument("--screenshot", type=Path, metavar="PATH",
                        help="stream the preset for --seconds, save a PNG of the window to PATH, exit")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long --screenshot streams first (default 5)")


def run(args: argparse.Namespace) -> int:
    """Open the window with ``args``; returns the exit code."""
    if args.screenshot and "QT_QPA_PLATFORM" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PyQt6 import sip
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from .theme import apply_theme
    from .window import DEFAULT_PRESET, MainWindow

    global _app  # lives until the interpreter ends, after every widget
    app = _app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("rtfx")
    apply_theme(app)
    window = MainWindow()

    def report(kind, value, tb) -> None:  # an unexpected error is shown, never a crash
        window.show_error(f"internal error: {value!r}\n{''.join(traceback.format_exception(kind, value, tb))}")
        traceback.print_exception(kind, value, tb)

    sys.excepthook = report
    window.load_preset_file(args.preset or DEFAULT_PRESET)
    window.show()
    code = 0
    if args.screenshot:
        window.resize(1600, 1000)

        def shoot() -> None:
            nonlocal code
            window.poll_engine()
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not window.grab().save(str(args.screenshot)):
                print(f"rtfx gui: cannot write {args.screenshot}", file=sys.stderr)
                code = 1
            if not window.link.running:
                print(f"rtfx gui: the stream did not run: {window.errors[-1] if window.errors else '?'}", file=sys.stderr)
                code = 1
            window.undo_stack.setClean()
            window.close()
            app.quit()

        def streaming(_info) -> None:  # the picture: a slot selected, CPU vs GPU measured
            window.rack.setCurrentRow(min(2, window.rack.count() - 1))
            window.compare_devices()
            QTimer.singleShot(int(args.seconds * 1000), when_measured)

        def when_measured(waited: float = 0.0) -> None:
            if window.latency.measuring and waited < 30:
                QTimer.singleShot(250, lambda: when_measured(waited + 0.25))
            else:
                QTimer.singleShot(300, shoot)  # a few more meter updates

        # N seconds of streaming (or of the error, if it could not start) before the picture
        window.link.started.connect(streaming)
        window.link.failed.connect(lambda _: QTimer.singleShot(500, shoot))
        window.start_stream()  # after the connections: a virtual device may fail at once
    elif args.start:
        window.start_stream()
    app.exec()
    # Delete the window's C++ side now, while the QApplication exists: left to the garbage
    # collector at exit (the closures above hold it), it could go after the app and crash.
    sip.delete(window)
    return code


def main(argv: list[str] | None = None) -> int:
    return run(_parser().parse_args(argv))
