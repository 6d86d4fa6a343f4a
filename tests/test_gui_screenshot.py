"""``python -m gui --screenshot``: the window streams the default preset, then saves a PNG."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
needs_jackd = pytest.mark.skipif(shutil.which("jackd") is None, reason="needs Debian's jackd2 (make setup installs it)")

ROOT = Path(__file__).resolve().parent.parent


def _screenshot(png: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m gui --screenshot png --seconds 1`` offscreen (a crash prints its stack)."""
    return subprocess.run([sys.executable, "-X", "faulthandler", "-m", "gui", "--screenshot", str(png), "--seconds", "1"],
                          cwd=ROOT, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **env},
                          capture_output=True, text=True, timeout=120)


@needs_jackd
def test_screenshot_option_streams_and_saves_a_png(tmp_path):
    from PyQt6.QtGui import QImage

    png = tmp_path / "window.png"
    result = _screenshot(png)
    assert result.returncode == 0, result.stderr  # non-zero when the stream did not run
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1600, 1000)


def test_screenshot_without_a_device_says_why_and_exits(tmp_path):
    """No jackd on PATH: the virtual device fails at once; the window shows the error in the
    picture and exits 1 with the reason (it once waited forever for a start that never came)."""
    png = tmp_path / "window.png"
    result = _screenshot(png, PATH=str(Path(sys.executable).parent))
    assert result.returncode == 1
    assert "the stream did not run: virtual device: jackd not found" in result.stderr
    assert png.exists()
