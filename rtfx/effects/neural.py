"""Any PyTorch model as a streaming effect: TorchScript (``torch.jit.save``) or an exported
program (``torch.export.save``, ``.pt2``).

The streaming contract a model states (checked when the file is loaded):

- **Shape.** Each stream channel is one batch item of a mono model: input ``(channels, 1,
  frames)`` float32, output ``(channels, 1, frames)``, or, for a model without padding,
  ``(channels, 1, frames - receptive_field + 1)``. Only the last outputs are used.
- **Causal, finite memory** (convolutional nets): an int ``receptive_field`` = R, output frame n
  depends on input frames n - R + 1 .. n and on nothing later; frames before the stream's start
  read as zeros. The effect keeps a line of the last R - 1 + blocksize input frames and calls
  the model on that whole line every block (a constant shape, so static exports and CUDA graphs
  work), using the last ``frames`` outputs. Causality and R are checked by perturbing a probe.
- **Recurrent** (RNNs, state-space models): a method ``initial_state(channels: int)``
  returning a tensor or a tuple of tensors, and ``forward(x, state) -> (y, state)`` on
  ``(channels, 1, frames)`` blocks, ``frames <= blocksize`` (the block may be a strided view:
  use ``reshape``, not ``view``). The effect copies the returned state into buffers it owns.

A TorchScript module states R as an attribute (``self.receptive_field = 255``) and the recurrent
form as ``@torch.jit.export`` methods. An exported program keeps no attributes: save R in an
extra file, ``torch.export.save(ep, path, extra_files={"rtfx.json": '{"receptive_field": 255}'})``,
and export with a dynamic frames dimension (the line length depends on the block size).
Recurrent models must be TorchScript.

Allocation: the effect's own buffers (the input line, gains, state) are preallocated in
``prepare``; the model's forward allocates its intermediates and outputs on every call, as
eager PyTorch does. Its cost is the model's.

CUDA graphs: the effect's own kernels are the same on every block (fixed buffers, gains as
device ramps). The model's must be too: a forward that reads values back to the host
(``.item()``, data-dependent branches or shapes) fails when the graph is captured.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import torch

from ..effect import Effect
from ..params import Param
from ..spec import ProcessSpec
from .gain import GainRamp, db_to_linear

EXAMPLE_MODEL = Path(__file__).resolve().parents[2] / "assets" / "models" / "tanh_drive_tcn.pt"
CONTRACT_FILE = "rtfx.json"
PROBE_FRAMES = 64


def _load(path: Path) -> tuple[torch.nn.Module, dict]:
    """The module in ``path`` (on the CPU) and its ``rtfx.json`` extra file (``{}`` if none)."""
    errors = []
    loaders = [_load_torchscript, _load_exported]
    if path.suffix == ".pt2":
        loaders.reverse()
    for loader in loaders:
        try:
            return loader(path)
        except Exception as error:  # noqa: BLE001 - any failure means "not this format"
            errors.append(f"{loader.__doc__}: {str(error).strip().splitlines()[0][:120]}")
    raise ValueError(f"neural: file '{path}' is not a model ({'; '.join(errors)})")


def _load_torchscript(path: Path) -> tuple[torch.nn.Module, dict]:
    """TorchScript"""
    extra = {CONTRACT_FILE: ""}
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; loading it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return module, json.loads(extra[CONTRACT_FILE] or "{}")


def _load_exported(path: Path) -> tuple[torch.nn.Module, dict]:
    """exported program"""
    extra = {CONTRACT_FILE: ""}
    program = torch.export.load(str(path), extra_files=extra)
    return program.module(), json.loads(extra[CONTRACT_FILE] or "{}")


class _Float32Kernels:
    """While entered: cuDNN convolutions and RNNs compute in IEEE float32, not TF32.

    PyTorch lets cuDNN use TF32 (10-bit mantissa) by default on recent GPUs, which moves a
    model's output by ~1e-3 from the CPU's; rtfx's signal path is float32. The previous
    settings come back on exit (the new ``fp32_precision`` API only: mixing it with the legacy
    ``allow_tf32`` flag makes PyTorch raise).
    """

    _kernels = (torch.backends.cudnn.conv, torch.backends.cudnn.rnn)

    def __enter__(self) -> None:
        self._previous = tuple(k.fp32_precision for k in self._kernels)
        for kernel in self._kernels:
            kernel.fp32_precision = "ieee"

    def __exit__(self, *exc) -> None:
        for kernel, previous in zip(self._kernels, self._previous):
            kernel.fp32_precision = previous


def _as_tuple(state) -> tuple[torch.Tensor, ...] | None:
    """A recurrent state as a tuple of tensors, or None if it is not one."""
    if isinstance(state, torch.Tensor):
        return (state,)
    if isinstance(state, (tuple, list)) and state and all(isinstance(s, torch.Tensor) for s in state):
        return tuple(state)
    return None


class Neural(Effect):
    """A neural network from a file (TorchScript or ``torch.export``), streamed block by block.

    Args:
        file: the model (see the module docstring for the contract it must state).
        input_db, output_db: gains before and after the model (ramped).
    """

    type_name = "neural"
    category = "neural"
    fields = {
        "file": {
            "type": "string",
            "description": "TorchScript (.pt) or exported program (.pt2), path relative to the preset's folder",
        }
    }
    example_args = {"file": str(EXAMPLE_MODEL)}
    params = (
        Param("input_db", "dB", -24.0, 24.0, 0.0, doc="gain into the model"),
        Param("output_db", "dB", -24.0, 24.0, 0.0, doc="gain after the model"),
    )

    def __init__(self, file: str | Path, **values: float) -> None:
        self.file = Path(file)
        if not self.file.is_file():
            raise ValueError(f"neural: model file '{self.file}' does not exist")
        self._model, contract = _load(self.file)
        if isinstance(self._model, torch.jit.ScriptModule):
            self._model.eval()  # an exported program's module is already in eval mode (and refuses eval())
        for parameter in self._model.parameters():
            parameter.requires_grad_(False)
        self.recurrent = hasattr(self._model, "initial_state")
        field = contract.get("receptive_field", getattr(self._model, "receptive_field", None))
        if self.recurrent:
            self.receptive_field = 1
            self._check_recurrent()
        elif field is None:
            raise ValueError(
                f"neural: model '{self.file}' states no streaming contract: give it an int attribute "
                "receptive_field (causal models) or methods initial_state(channels) and "
                "forward(x, state) -> (y, state) (recurrent models); see rtfx.effects.neural"
            )
        else:
            if not isinstance(field, int) or isinstance(field, bool) or field < 1:
                raise ValueError(f"neural: model '{self.file}': receptive_field must be an int >= 1, got {field!r}")
            self.receptive_field = field
            self._check_causal()
        super().__init__(**values)

    # -- checks at load (CPU, one channel) ---------------------------------------------------
    def _call(self, *args):
        where = f"neural: model '{self.file}'"
        try:
            with torch.no_grad(), _Float32Kernels():
                return self._model(*args)
        except Exception as error:  # noqa: BLE001 - report any failure of the model with its file
            shape = tuple(args[0].shape)
            raise ValueError(f"{where} fails on an input of shape {shape}: {str(error).strip()[:300]}") from None

    def _output_frames(self, y, frames: int, channels: int) -> None:
        """Raise unless ``y`` is a ``(channels, 1, n)`` tensor with n = frames or frames - R + 1."""
        valid = (frames, frames - self.receptive_field + 1)
        expected = " or ".join(f"({channels}, 1, {n})" for n in dict.fromkeys(valid))
        if not isinstance(y, torch.Tensor) or y.dim() != 3 or tuple(y.shape[:2]) != (channels, 1) or y.shape[-1] not in valid:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(
                f"neural: model '{self.file}' returned {got} for an input of shape ({channels}, 1, {frames}); "
                f"expected {expected}"
            )

    def _check_causal(self) -> None:
        """Probe: the output has the right shape, ignores the future and the far past."""
        r, frames = self.receptive_field, self.receptive_field - 1 + PROBE_FRAMES
        x = 0.1 * torch.randn(1, 1, frames, generator=torch.Generator().manual_seed(0))
        y = self._call(x)
        self._output_frames(y, frames, 1)
        lead = frames - y.shape[-1]  # output k is input frame k + lead
        tolerance = 1e-6 * max(float(y.abs().max()), 1e-3)
        future = x.clone()
        future[..., -1] += 0.1
        if not torch.allclose(self._call(future)[..., :-1], y[..., :-1], rtol=0, atol=tolerance):
            raise ValueError(f"neural: model '{self.file}' is not causal: its output depends on later input")
        past = x.clone()
        past[..., 0] += 0.1
        if not torch.allclose(self._call(past)[..., r - lead :], y[..., r - lead :], rtol=0, atol=tolerance):
            raise ValueError(
                f"neural: model '{self.file}' has receptive_field = {r}, but its output depends on input "
                f"more than {r - 1} frames back"
            )

    def _check_recurrent(self) -> None:
        """Probe: initial_state gives tensors; forward(x, state) gives (y, state) of the right shapes."""
        initial = self._model.initial_state(1)
        self._single_state = isinstance(initial, torch.Tensor)
        state = _as_tuple(initial)
        if state is None:
            raise ValueError(f"neural: model '{self.file}': initial_state(channels) must return a tensor or a tuple of tensors")
        result = self._call(torch.zeros(1, 1, PROBE_FRAMES), self._pack(state))
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ValueError(f"neural: model '{self.file}': forward(x, state) must return (y, state)")
        self._output_frames(result[0], PROBE_FRAMES, 1)
        new = _as_tuple(result[1])
        if new is None or [s.shape for s in new] != [s.shape for s in state]:
            raise ValueError(f"neural: model '{self.file}': forward(x, state) must return a state shaped like initial_state's")

    def _pack(self, state: tuple[torch.Tensor, ...]):
        """The state in the form the model takes: a tensor, or the tuple."""
        return state[0] if self._single_state else state

    # -- audio thread ------------------------------------------------------------------------
    def _prepare(self, spec: ProcessSpec) -> None:
        self._model.to(spec.device)
        self._precision = _Float32Kernels() if spec.device.type == "cuda" else contextlib.nullcontext()
        c, dev = spec.channels, spec.device
        # The model's input: the line [last R - 1 frames | block], shifted through `_spare` (the
        # same buffers every block); for a recurrent model, the block alone.
        length = spec.blocksize if self.recurrent else self.receptive_field - 1 + spec.blocksize
        self._line = torch.zeros(c, 1, length, device=dev, dtype=spec.dtype)
        self._spare = torch.empty_like(self._line)
        self._out = torch.empty(c, spec.blocksize, device=dev, dtype=spec.dtype)
        self._in_gain, self._out_gain = GainRamp(spec, always=True), GainRamp(spec)
        if self.recurrent:
            self._initial = tuple(s.to(dev) for s in _as_tuple(self._model.initial_state(c)))
            self._state = tuple(s.clone() for s in self._initial)
            y = self._call(self._line, self._pack(self._state))[0]
        else:
            y = self._call(self._line)
        self._output_frames(y, length, c)
        self._reset()

    def _reset(self) -> None:
        self._line.zero_()
        if self.recurrent:
            for state, initial in zip(self._state, self._initial):
                state.copy_(initial)
        self._in_gain.snap(db_to_linear(self.value("input_db")))
        self._out_gain.snap(db_to_linear(self.value("output_db")))

    def _control(self, frames: int) -> None:
        self._in_gain.move_to(db_to_linear(self.value("input_db")), frames)
        self._out_gain.move_to(db_to_linear(self.value("output_db")), frames)

    def _process(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        with torch.no_grad(), self._precision:
            y = self._run_recurrent(x) if self.recurrent else self._run_causal(x)
        return self._out_gain.apply(y[:, 0, y.shape[-1] - frames :], self._out)

    def _run_causal(self, x: torch.Tensor) -> torch.Tensor:
        """Shift the block into the line [past R - 1 + blocksize - frames | block]; run the model on it."""
        frames = x.shape[-1]
        line, kept = self._line, self._line.shape[-1] - frames
        past = self._spare[..., :kept]
        past.copy_(line[..., frames:])  # the last `kept` frames move to the front
        line[..., :kept].copy_(past)
        self._in_gain.apply(x, line[:, 0, kept:])
        return self._model(line)

    def _run_recurrent(self, x: torch.Tensor) -> torch.Tensor:
        """Run the model on the block and the state; keep the new state in our buffers."""
        block = self._line[..., : x.shape[-1]]
        self._in_gain.apply(x, block[:, 0])
        y, state = self._model(block, self._pack(self._state))
        for mine, new in zip(self._state, _as_tuple(state)):
            mine.copy_(new)
        return y

    def _preset_fields(self) -> dict:
        return {"file": str(self.file)}
