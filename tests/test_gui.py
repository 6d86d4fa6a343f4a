"""The rack window driven as a user would, checked against what the engine process then does.

Offscreen Qt, on a JACK dummy server the window starts itself (its virtual device). One window
streams through the module (an engine start costs seconds); the tests run in file order.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")
pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="needs Debian's jackd2 (make setup installs it)")

from PyQt6.QtCore import Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QComboBox  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets"
START_TIMEOUT_MS = 60_000


def gains_preset(path: Path, *gains_db: float) -> Path:
    path.write_text(json.dumps({"format": "rtfx-preset", "version": 1, "name": "gains",
                                "chain": [{"type": "gain", "gain_db": g} for g in gains_db]}))
    return path


def engine_chain(window) -> list[dict]:
    """The stages the engine plays now (asked over its pipe)."""
    assert window.link.engine is not None, f"the stream stopped: {window.errors}"
    state = window.link.engine.chain_state()
    assert state is not None, "the engine did not answer"
    return state["chain"]


def wait_engine(qtbot, window, check, timeout: int = 5000) -> None:
    """Wait until ``check(engine stages)`` holds (chain swaps crossfade in over ~50 ms)."""
    qtbot.waitUntil(lambda: check(engine_chain(window)), timeout=timeout)


def output_ratio(window) -> float:
    """Output peak over input peak, channel 1, over the same frames (measured by the engine)."""
    levels = window.link.engine.levels()
    return float(levels["out_peak"][0] / max(levels["in_peak"][0], 1e-9))


def wait_ratio(qtbot, window, expected: float, timeout: int = 5000) -> None:
    def close() -> bool:
        levels = window.link.engine.levels()
        return levels["in_peak"][0] > 0.01 and abs(output_ratio(window) / expected - 1) < 0.02
    qtbot.waitUntil(close, timeout=timeout)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from gui.theme import apply_theme
    from gui.window import MainWindow

    apply_theme(qapp)
    win = MainWindow()
    win.ask_unsaved = lambda: "discard"
    win.audio_bar.refresh(prefer_virtual=True)
    assert win.load_preset_file(gains_preset(tmp_path_factory.mktemp("gui") / "gains.json", 0.0))
    win.show()
    win.start_stream()
    deadline = time.monotonic() + START_TIMEOUT_MS / 1000
    while not win.link.running and time.monotonic() < deadline and not win.errors:
        qapp.processEvents()
        time.sleep(0.02)
    assert win.link.running, win.errors
    yield win
    win.undo_stack.setClean()
    win.close()


def slot(window, index: int):
    return window.rack.slot(index)


def test_start_streams_the_window_document(qtbot, window):
    import torch

    cuda_item = window.audio_bar.dsp.model().item(1)
    assert cuda_item.isEnabled() == torch.cuda.is_available()
    if not torch.cuda.is_available():
        assert "CUDA" in window.audio_bar.dsp.toolTip() and "unavailable" in window.audio_bar.dsp.toolTip()
    assert window.audio_bar.start.text() == "Stop" and not window.audio_bar.block.isEnabled()
    assert [s["type"] for s in engine_chain(window)] == ["gain"]
    qtbot.waitUntil(lambda: window.link.engine.meters()["blocks"] > 50, timeout=5000)
    wait_ratio(qtbot, window, 1.0)
    assert window.audio_bar.latency.text().startswith("latency ") and "—" not in window.audio_bar.latency.text()
    qtbot.waitUntil(lambda: window.latency.values["blocks"].text() not in ("—", "0"), timeout=3000)


def test_add_turn_type_reset_bypass_remove(qtbot, window):
    palette = window.palette_view
    item = next(palette.topLevelItem(i).child(j) for i in range(palette.topLevelItemCount())
                for j in range(palette.topLevelItem(i).childCount())
                if palette.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole) == "gain")
    palette.itemActivated.emit(item, 0)  # double-click / Enter on the palette entry
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["gain", "gain"])
    assert window.rack.currentRow() == 1 and window.params.title.text().startswith("2. gain")

    control = window.params.controls["gain_db"]
    for value in np.linspace(0, -20, 40):  # a knob turn: many small moves, one undo step
        control.knob.turn_to(value)
    wait_engine(qtbot, window, lambda chain: chain[1]["current"]["gain_db"] == -20.0)
    wait_ratio(qtbot, window, 0.1)
    assert window.isWindowModified()

    control.entry.selectAll()
    qtbot.keyClicks(control.entry, "-6")
    qtbot.keyClick(control.entry, Qt.Key.Key_Return)  # typed entry
    wait_ratio(qtbot, window, 10 ** (-6 / 20))
    assert control.knob.value == pytest.approx(-6)

    qtbot.mouseDClick(control.knob, Qt.MouseButton.LeftButton)  # double-click: the default
    wait_engine(qtbot, window, lambda chain: chain[1]["current"]["gain_db"] == 0.0)
    control.knob.turn_to(-20)
    wait_ratio(qtbot, window, 0.1)

    qtbot.mouseClick(slot(window, 1).bypass, Qt.MouseButton.LeftButton)
    wait_engine(qtbot, window, lambda chain: chain[1].get("bypass") is True)
    wait_ratio(qtbot, window, 1.0)
    qtbot.mouseClick(slot(window, 1).bypass, Qt.MouseButton.LeftButton)
    wait_ratio(qtbot, window, 0.1)

    slot(window, 1).mix.setValue(50)  # the slot's mix slider: half wet
    wait_ratio(qtbot, window, 0.55)

    qtbot.mouseClick(slot(window, 1).remove, Qt.MouseButton.LeftButton)
    wait_engine(qtbot, window, lambda chain: len(chain) == 1)
    wait_ratio(qtbot, window, 1.0)
    assert window.rack.count() == 1


def test_reorder_and_undo_redo(qtbot, window):
    window.add_effect("biquad")  # after the selected gain
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["gain", "biquad"])
    window.rack.setFocus()
    qtbot.keyClick(window.rack, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)  # move the biquad up
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["biquad", "gain"])
    assert window.rack.currentRow() == 0

    window.move_effect(0, 1)  # what a drag does
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["gain", "biquad"])
    window.rack.setCurrentRow(0)
    window.params.controls["gain_db"].knob.turn_to(-20)
    wait_engine(qtbot, window, lambda chain: chain[0]["current"]["gain_db"] == -20.0)

    window.undo_stack.undo()  # the knob
    wait_engine(qtbot, window, lambda chain: chain[0]["current"]["gain_db"] == 0.0)
    assert window.params.controls["gain_db"].value == pytest.approx(0.0)
    window.undo_stack.undo()  # the drag
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["biquad", "gain"])
    window.undo_stack.redo()
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["gain", "biquad"])
    window.undo_stack.redo()
    wait_engine(qtbot, window, lambda chain: chain[0]["current"]["gain_db"] == -20.0)
    assert [window.document.stages[i]["type"] for i in range(2)] == ["gain", "biquad"]


def test_presets_save_load_prompt_and_errors(qtbot, window, tmp_path):
    saved = tmp_path / "mine.json"
    assert window.save_preset_file(saved)
    assert not window.isWindowModified()
    data = json.loads(saved.read_text())
    assert [s["type"] for s in data["chain"]] == ["gain", "biquad"] and data["chain"][0]["gain_db"] == -20.0

    window.set_bypass(1, True)
    assert window.isWindowModified()
    window.ask_unsaved = lambda: "cancel"
    demo = ASSETS / "presets" / "guitar_demo.json"
    assert not window.load_preset_file(demo)  # the user cancelled: nothing changes
    assert [s["type"] for s in engine_chain(window)] == ["gain", "biquad"]
    window.ask_unsaved = lambda: "discard"
    assert window.load_preset_file(demo)
    expected = [s["type"] for s in json.loads(demo.read_text())["chain"]]
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == expected, timeout=15000)
    assert window.link.running, window.errors
    assert not window.isWindowModified() and window.rack.count() == len(expected)

    assert window.load_preset_file(saved)
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["gain", "biquad"], timeout=15000)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"chain": [{"type": "biquad", "q": -1}]}))
    errors = len(window.errors)
    assert not window.load_preset_file(bad)
    assert len(window.errors) == errors + 1 and "q = -1" in window.errors[-1]
    assert window.banner.isVisible() or window.banner.text().startswith("⚠")
    assert [s["type"] for s in engine_chain(window)] == ["gain", "biquad"]  # engine untouched


def test_switch_device_settings_stop_and_start(qtbot, window):
    qtbot.mouseClick(window.audio_bar.start, Qt.MouseButton.LeftButton)  # Stop
    assert window.link.engine is None and window.audio_bar.start.text() == "Start"
    assert window.audio_bar.block.isEnabled()
    window.audio_bar.block.setCurrentIndex(window.audio_bar.block.findData(128))
    window.audio_bar.source.setCurrentText("Demo: voice (looped)")
    qtbot.mouseClick(window.audio_bar.start, Qt.MouseButton.LeftButton)  # Start
    qtbot.waitUntil(lambda: window.link.running, timeout=START_TIMEOUT_MS)
    assert window.link.settings.blocksize == 128
    qtbot.waitUntil(lambda: window.link.engine.meters()["deadline_us"] == pytest.approx(128 / 48000 * 1e6, abs=0.1),
                    timeout=3000)
    assert window.link.settings.input_file.name == "voice.wav"
    assert [s["type"] for s in engine_chain(window)] == [s["type"] for s in window.document.stages]


def test_changing_a_choice_rebuilds_the_effect(qtbot, window):
    window.rack.setCurrentRow(1)  # the biquad
    box = next(w for w in window.params.findChildren(QComboBox) if w.findData("highpass") >= 0)
    box.setCurrentIndex(box.findData("highpass"))
    wait_engine(qtbot, window, lambda chain: chain[1]["kind"] == "highpass")
    window.undo_stack.undo()
    wait_engine(qtbot, window, lambda chain: chain[1]["kind"] != "highpass")


def busy(seconds: float) -> None:
    """Hold the GUI thread (and this process's GIL) in pure Python: a deliberately slow slot."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def hammer(qapp, window, seconds: float) -> int:
    """Drive the GUI hard for ``seconds``: fast knob sweeps over every parameter of the first
    slot, a reorder (a chain swap in the engine), a window resize, each round; meanwhile a
    slot blocks the GUI thread (and this process's GIL) for 250 ms every 600 ms. Returns the
    rounds made."""
    slow = QTimer()
    slow.timeout.connect(lambda: busy(0.25))
    slow.start(600)
    sizes, rounds, started = [(1500, 940), (900, 650), (1700, 1050)], 0, time.monotonic()
    while time.monotonic() - started < seconds:
        window.rack.setCurrentRow(0)
        for control in list(window.params.controls.values()):
            top = min(control.param.maximum, 20000.0) if control.param.unit == "Hz" else control.param.maximum
            for value in np.linspace(control.param.minimum, top, 25):
                control.knob.turn_to(value)
        window.move_effect(0, 1)
        window.resize(*sizes[rounds % len(sizes)])
        qapp.processEvents()
        rounds += 1
    slow.stop()
    return rounds


def window_of_blocks(window, run) -> dict:
    """Meters' differences over ``run()`` (blocks, deadline misses, xruns) and its seconds."""
    engine = window.link.engine
    before, started = engine.meters(), time.monotonic()
    run()
    time.sleep(0.2)  # the last blocks' meters
    after = engine.meters()
    delta = {key: after[key] - before[key] for key in ("blocks", "deadline_misses", "xruns")}
    return {**delta, "seconds": time.monotonic() - started - 0.2, "p99_us": after["dsp_p99_us"], "max_us": after["dsp_max_us"]}


def test_isolation_a_hammered_gui_does_not_block_the_engine(qtbot, qapp, window):
    """128-frame blocks (2.67 ms deadline) while the GUI is driven hard. In one process, each
    250 ms slow slot alone would cost ~90 blocks. Misses the machine itself causes (it may be
    shared) are told apart by an idle control run of the same length, made only if needed."""
    errors = len(window.errors)
    assert window.link.settings.blocksize == 128
    qtbot.waitUntil(lambda: window.link.engine.meters()["blocks"] > 300, timeout=5000)
    rounds = 0

    def drive() -> None:
        nonlocal rounds
        rounds = hammer(qapp, window, 5.0)

    stressed = window_of_blocks(window, drive)
    print(f"isolation, GUI hammered: {rounds} rounds, {stressed}")
    assert rounds >= 3
    assert stressed["blocks"] >= 0.9 * stressed["seconds"] * 48000 / 128  # no gap in the stream
    assert window.errors[errors:] == []  # every edit reached the right stage of the right chain
    if stressed["deadline_misses"] or stressed["xruns"]:
        idle = window_of_blocks(window, lambda: qtbot.wait(round(1000 * stressed["seconds"])))
        print(f"isolation, GUI idle: {idle}")
        # A GUI that blocked the engine would cost dozens of blocks (a 250 ms slot: ~90). On a
        # 2-core machine the engine's process can still lose the CPU to the busy GUI process
        # once (CI saw 1 miss in 2027 blocks, a 2.7 ms block, p99 188 us): allow 0.1% over idle.
        assert stressed["deadline_misses"] <= idle["deadline_misses"] + max(1, 0.001 * stressed["blocks"]), \
            "the GUI caused deadline misses"
        # PortAudio's xrun flags on the dummy server also count jackd's own thread losing the
        # CPU to the busy GUI on a 2-core machine (CI saw 4 in 2042 blocks, 0 misses): allow
        # 0.5% of the blocks over the idle run.
        assert stressed["xruns"] <= idle["xruns"] + max(2, 0.005 * stressed["blocks"]), "the GUI caused xruns"


def test_a_failing_effect_is_reported_in_the_window(qtbot, window):
    index = [s["type"] for s in window.document.stages].index("biquad")
    window.rack.setCurrentRow(index)  # a corner above Nyquist fails in the engine
    if "freq_hz" not in window.params.controls:  # seen once after the isolation run: see report
        window.select(index)
    errors = len(window.errors)
    window.params.controls["freq_hz"].knob.turn_to(40000)
    qtbot.waitUntil(lambda: len(window.errors) > errors, timeout=5000)
    assert "freq_hz" in window.errors[-1] or "failed" in window.errors[-1], window.errors
    assert window.link.running
    window.undo_stack.undo()
    # mid-swap the engine may still report another chain at that place: wait for the biquad
    wait_engine(qtbot, window, lambda chain: chain[index]["current"].get("freq_hz", 1e9) < 24000)


def test_cpu_vs_gpu_measured_on_request(qtbot, window):
    qtbot.mouseClick(window.latency.compare_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.latency.compare_button.isEnabled(), timeout=30000)
    text = window.latency.compare_result.text()
    assert "CPU</b>: p50" in text
    import torch

    assert ("CUDA</b>: p50" in text) if torch.cuda.is_available() else ("no CUDA GPU" in text)


def test_palette_lists_every_registered_effect(window):
    import rtfx

    assert sorted(window.palette_view.type_names()) == sorted(rtfx.EFFECTS)


def test_drag_from_the_palette_inserts_where_dropped(qtbot, window):
    from PyQt6.QtCore import QPointF
    from PyQt6.QtGui import QDropEvent

    palette = window.palette_view
    item = next(palette.topLevelItem(i).child(j) for i in range(palette.topLevelItemCount())
                for j in range(palette.topLevelItem(i).childCount())
                if palette.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole) == "gain")
    before = [s["type"] for s in window.document.stages]
    where = window.rack.visualItemRect(window.rack.item(0)).center()
    mime = palette.mimeData([item])  # kept alive: the event does not own it
    drop = QDropEvent(QPointF(where), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.rack.dropEvent(drop)
    wait_engine(qtbot, window, lambda chain: [s["type"] for s in chain] == ["gain", *before])
    assert window.rack.currentRow() == 0


def test_live_changes_tell_value_edits_from_structural_ones():
    from gui.document import RackDocument, live_changes, new_stage

    old = RackDocument([new_stage("gain"), {"type": "biquad", "kind": "lowpass", "freq_hz": 1000.0}])
    values = old.copy()
    values.stages[0]["gain_db"] = -6.0
    values.stages[1]["bypass"] = True
    values.stages[1]["mix"] = 0.5
    assert live_changes(old, values) == [("set", 0, "gain_db", -6.0), ("set", 1, "mix", 0.5), ("bypass", 1, True)]
    kind = old.copy()
    kind.stages[1]["kind"] = "highpass"
    assert live_changes(old, kind) is None  # a new effect: the chain is swapped
    moved = RackDocument(old.stages[::-1])
    assert live_changes(old, moved) is None


def test_a_lost_device_is_reported_and_the_window_lives_on(qtbot, window):
    """Last in the file: the virtual device's server is killed under the running stream."""
    os.kill(window.link._server.jackd_pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not window.link.running, timeout=15000)
    assert "stopped delivering blocks" in window.errors[-1]
    assert window.audio_bar.start.text() == "Start" and window.audio_bar.block.isEnabled()
    window.add_effect("gain")  # the window still works: edits go to the document
    assert window.document.stages[-1]["type"] == "gain" or window.document.stages[window.selected]["type"] == "gain"


def test_the_cpu_versus_gpu_measurement_says_how_blocks_ran():
    from gui.measure import measure_chain

    preset = {"chain": [{"type": "gain", "gain_db": -6}]}
    result = measure_chain(preset, 48000, 64, 2, "cpu", seconds=0.05)
    assert result["path"] == "cpu" and 0 < result["p50_us"] <= result["max_us"]
    if torch.cuda.is_available():
        assert measure_chain(preset, 48000, 64, 2, "cuda", seconds=0.05)["path"] == "cuda graph"
    else:
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            measure_chain(preset, 48000, 64, 2, "cuda")
