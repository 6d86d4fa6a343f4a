"""The audio bar: host API, devices, rate, block size, input, DSP device, start/stop, latency."""
from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QStandardItemModel
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from .engine_link import DEMO_INPUTS, StreamSettings
from .theme import TEXT_DIM

VIRTUAL = "Virtual device (JACK dummy)"
DEVICE_INPUT = "Device input"
RATES = (44100, 48000, 88200, 96000)
BLOCKS = (32, 64, 128, 256, 512, 1024)


def cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken torch install just means no CUDA
        return False


def _devices() -> tuple[list[dict], list[dict]]:
    """PortAudio's host APIs and devices (empty when PortAudio is missing)."""
    try:
        import sounddevice as sd

        return [dict(a) for a in sd.query_hostapis()], [dict(d) for d in sd.query_devices()]
    except Exception:  # noqa: BLE001 - no PortAudio: only the virtual device is offered
        return [], []


class AudioBar(QWidget):
    """The stream's settings; ``start_requested`` / ``stop_requested`` when the button is hit,
    ``dsp_requested`` when the DSP device is changed while streaming (a live switch)."""

    start_requested = pyqtSignal()
    stop_requested = pyqtSignal()
    dsp_requested = pyqtSignal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.hostapi = QComboBox()
        self.hostapi.setToolTip("Audio system (host API). With no sound card, the virtual device runs a JACK "
                                "server on its dummy driver: a real audio clock, no hardware")
        self.input_device = QComboBox()
        self.input_device.setToolTip("Input device")
        self.output_device = QComboBox()
        self.output_device.setToolTip("Output device")
        self.source = QComboBox()
        self.source.addItems([DEVICE_INPUT, *DEMO_INPUTS])
        self.source.setToolTip("What feeds the chain: the input device, or a demo file played in a loop")
        self.rate = QComboBox()
        for rate in RATES:
            self.rate.addItem(f"{rate / 1000:g} kHz", rate)
        self.rate.setCurrentIndex(RATES.index(48000))
        self.block = QComboBox()
        for block in BLOCKS:
            self.block.addItem(f"{block}", block)
        self.block.setCurrentIndex(BLOCKS.index(256))
        self.block.setToolTip("Block size in frames: smaller is lower latency and a tighter deadline")
        self.input_channels = QLineEdit("1")
        self.input_channels.setFixedWidth(44)
        self.input_channels.setToolTip("Input channels feeding the chain, 1-based (e.g. 1 or 1,2)")
        self.dsp = QComboBox()
        self.dsp.addItem("CPU", "cpu")
        self.dsp.addItem("CUDA", "cuda")
        if not cuda_available():
            item = self.dsp.model().item(1) if isinstance(self.dsp.model(), QStandardItemModel) else None
            if item is not None:
                item.setEnabled(False)
            self.dsp.setItemData(1, "No CUDA GPU here: torch sees none", Qt.ItemDataRole.ToolTipRole)
            self.dsp.setToolTip("DSP device. CUDA is unavailable: torch sees no CUDA GPU on this machine")
        else:
            self.dsp.setToolTip("DSP device for the chain; changing it while streaming moves the chain "
                                "without a click (CUDA: one graph per block)")
        self.start = QPushButton("Start")
        self.start.setObjectName("start")
        self.start.setCheckable(True)
        self.start.clicked.connect(self._clicked)
        self.latency = QLabel("latency —")
        self.latency.setObjectName("big")
        self.latency.setToolTip("End-to-end (round-trip) latency reported by the audio system, in ms")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for label, widget in (("Audio", self.hostapi), ("In", self.input_device), ("Out", self.output_device),
                              ("Source", self.source), ("Rate", self.rate), ("Block", self.block),
                              ("Ch", self.input_channels), ("DSP", self.dsp)):
            caption = QLabel(label)
            caption.setStyleSheet(f"color: {TEXT_DIM};")
            layout.addWidget(caption)
            layout.addWidget(widget)
        layout.addSpacing(10)
        layout.addWidget(self.start)
        layout.addStretch(1)
        layout.addWidget(self.latency)
        self._apis: list[dict] = []
        self._devs: list[dict] = []
        self.hostapi.currentIndexChanged.connect(self._fill_devices)
        self._running = False
        self.dsp.currentIndexChanged.connect(self._dsp_changed)
        self.refresh()

    def refresh(self, prefer_virtual: bool | None = None) -> None:
        """List host APIs and devices again; the virtual device first when there is no sound card."""
        self._apis, self._devs = _devices()
        real = [(i, a["name"]) for i, a in enumerate(self._apis)
                if any(self._devs[d]["max_output_channels"] > 0 for d in a["devices"])]
        if prefer_virtual is None:
            prefer_virtual = not real
        self.hostapi.blockSignals(True)
        self.hostapi.clear()
        self.hostapi.addItem(VIRTUAL, -1)
        for index, name in real:
            self.hostapi.addItem(name, index)
        self.hostapi.setCurrentIndex(0 if prefer_virtual else 1)
        self.hostapi.blockSignals(False)
        self._fill_devices()

    def _fill_devices(self) -> None:
        api = self.hostapi.currentData()
        for box, key in ((self.input_device, "max_input_channels"), (self.output_device, "max_output_channels")):
            box.clear()
            if api == -1:
                box.addItem("system (virtual)", None)
                continue
            for d in self._apis[api]["devices"]:
                if self._devs[d][key] > 0:
                    box.addItem(f"{self._devs[d]['name']}", d)
            default = self._apis[api]["default_output_device" if "output" in key else "default_input_device"]
            found = box.findData(default)
            if found >= 0:
                box.setCurrentIndex(found)
        if api == -1 and self.source.currentText() == DEVICE_INPUT:
            self.source.setCurrentIndex(1)  # the dummy's capture is silence: feed a demo file

    def settings(self) -> StreamSettings:
        """The settings as chosen; raises ``ValueError`` with a readable message."""
        text = self.input_channels.text().strip() or "1"
        try:
            channels = [int(part) for part in text.split(",")]
        except ValueError:
            raise ValueError(f"input channels: expected 1-based numbers like 1 or 1,2, got {text!r}") from None
        if min(channels) < 1:
            raise ValueError("input channels start at 1")
        virtual = self.hostapi.currentData() == -1
        source = self.source.currentText()
        device_in, device_out = self.input_device.currentData(), self.output_device.currentData()
        if not virtual and source == DEVICE_INPUT and device_in != device_out:
            raise ValueError("separate input and output devices are not supported yet: pick one duplex "
                             "device for both, or a demo file as the source")
        return StreamSettings(
            virtual=virtual, device=device_out, samplerate=self.rate.currentData(),
            blocksize=self.block.currentData(), input_channels=channels, dsp=self.dsp.currentData(),
            input_file=DEMO_INPUTS.get(source),
        )

    def set_running(self, running: bool, latency_ms: float | None = None) -> None:
        """Show the stream's state; the settings are locked while it runs."""
        self.start.blockSignals(True)
        self.start.setChecked(running)
        self.start.setText("Stop" if running else "Start")
        self.start.setEnabled(True)
        self.start.blockSignals(False)
        for widget in (self.hostapi, self.input_device, self.output_device, self.source, self.rate,
                       self.block, self.input_channels):
            widget.setEnabled(not running)
        self._running = running
        self.latency.setText(f"latency {latency_ms:.1f} ms" if latency_ms is not None else "latency —")

    def _dsp_changed(self) -> None:
        if self._running:
            self.dsp_requested.emit(self.dsp.currentData())

    def set_starting(self) -> None:
        self.start.setText("Starting…")
        self.start.setEnabled(False)

    def _clicked(self, checked: bool) -> None:
        self.start.setChecked(not checked)  # the window sets the real state when it changes
        (self.start_requested if checked else self.stop_requested).emit()
