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
pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="needs Debian's jackd2 (make setup installs it)")

ROOT = Path(__file__).resolve().parent.parent


def test_screenshot_option_streams_and_saves_a_png(tmp_path):
    from PyQt6.QtGui import QImage

    png = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "gui", "--screenshot", str(png), "--seconds", "1"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr  # non-zero when the stream did not run
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1600, 1000)
