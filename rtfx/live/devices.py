"""Sound devices: list them, pick one by index or name, check a rate and channel count.

PortAudio enumerates devices once, when it is initialised (``import sounddevice``); a JACK
server started later is seen only after ``sounddevice._terminate(); sounddevice._initialize()``
(``rtfx.live.virtual.JackDummyServer`` does that).

With nothing asked for, the JACK host API ("JACK Audio Connection Kit") is preferred when it
exists: with ALSA's plugins installed, ALSA's default device is a bridge into JACK that
delivers blocks in bursts.
"""
from __future__ import annotations

from typing import Literal

JACK = "JACK Audio Connection Kit"
Kind = Literal["input", "output", "duplex"]


class DeviceError(ValueError):
    """A device that does not exist, or cannot do what was asked."""


def _sd():
    try:
        import sounddevice
    except OSError as e:  # the Python package is there, the PortAudio library is not
        raise RuntimeError(f"PortAudio not found ({e}): install Debian's libportaudio2") from e
    return sounddevice


def _devices() -> list[dict]:
    sd = _sd()
    apis = sd.query_hostapis()
    devs = [dict(d) for d in sd.query_devices()]
    for d in devs:
        d["hostapi_name"] = apis[d["hostapi"]]["name"]
    return devs


def _fits(d: dict, kind: str) -> bool:
    ins, outs = d["max_input_channels"] > 0, d["max_output_channels"] > 0
    return {"input": ins, "output": outs, "duplex": ins and outs}[kind]


def list_devices() -> str:
    """A readable table of host APIs and devices (index, host API, name, channels, rate).

    ``>`` marks the default input device, ``<`` the default output device of each host API.
    """
    sd = _sd()
    apis = sd.query_hostapis()
    lines = ["host APIs:"]
    for i, a in enumerate(apis):
        n = len(a["devices"])
        lines.append(f"  {i}: {a['name']} ({n} device{'s' if n != 1 else ''})")
    devs = _devices()
    if not devs:
        return "\n".join(lines + ["devices: none"])
    w_api = max(len("host API"), *(len(d["hostapi_name"]) for d in devs))
    w_name = max(len("name"), *(len(d["name"]) for d in devs))
    lines += ["devices:", f"     idx  {'host API':<{w_api}}  {'name':<{w_name}}  in  out  default Hz"]
    for d in devs:
        api = apis[d["hostapi"]]
        mark = (">" if api["default_input_device"] == d["index"] else " ") + \
               ("<" if api["default_output_device"] == d["index"] else " ")
        lines.append(f"  {mark} {d['index']:>3}  {d['hostapi_name']:<{w_api}}  {d['name']:<{w_name}}"
                     f"  {d['max_input_channels']:>2}  {d['max_output_channels']:>3}"
                     f"  {d['default_samplerate']:>10.0f}")
    return "\n".join(lines)


def find_device(wanted: str | int | None = None, kind: Kind = "duplex") -> int:
    """The PortAudio index of a device that can do ``kind``.

    Args:
        wanted: an index (int, or a string of digits), a case-insensitive substring of the
            device's name (or words that all occur in "name, host API"), or None for the
            default: the JACK host API's device when JACK runs, else PortAudio's default.
        kind: "input", "output" or "duplex" (needs both input and output channels).

    Raises:
        DeviceError: no such device, an ambiguous name, or a device lacking the channels;
            the message lists the available devices.
    """
    if kind not in ("input", "output", "duplex"):
        raise ValueError(f"kind must be 'input', 'output' or 'duplex', not {kind!r}")
    devs = _devices()

    def fail(why: str) -> DeviceError:
        return DeviceError(f"{why}\n{list_devices()}")

    if isinstance(wanted, bool):
        raise TypeError("device must be an int, a str or None, not a bool")
    if isinstance(wanted, str) and wanted.strip().isdigit():
        wanted = int(wanted)
    if isinstance(wanted, int):
        if not 0 <= wanted < len(devs):
            raise fail(f"no {kind} device with index {wanted}")
        if not _fits(devs[wanted], kind):
            raise fail(f"device {wanted} {devs[wanted]['name']!r} cannot do {kind}")
        return wanted

    fitting = [d for d in devs if _fits(d, kind)]
    if wanted is None:
        sd = _sd()
        jack = [d for d in fitting if d["hostapi_name"] == JACK]
        pool = jack or fitting
        defaults = []
        for d in pool:
            api = sd.query_hostapis(d["hostapi"])
            if kind != "output" and api["default_input_device"] == d["index"]:
                defaults.append(d)
            if kind != "input" and api["default_output_device"] == d["index"]:
                defaults.append(d)
        if not jack:   # PortAudio's own default pair comes first outside JACK
            dflt = [i for i in sd.default.device if i is not None and i >= 0]
            defaults = [d for d in fitting if d["index"] in dflt] + defaults
        pick = defaults or pool
        if not pick:
            raise fail(f"no {kind} device found")
        return int(pick[0]["index"])

    if not isinstance(wanted, str):
        raise TypeError(f"device must be an int, a str or None, not {type(wanted).__name__}")
    text = wanted.strip().lower()
    exact = [d for d in fitting if d["name"].lower() == text]
    matches = exact or [d for d in fitting if text in d["name"].lower()] or \
        [d for d in fitting if all(w in f"{d['name']}, {d['hostapi_name']}".lower()
                                   for w in text.split())]
    if len(matches) > 1:   # several: one on the JACK host API wins
        matches = [d for d in matches if d["hostapi_name"] == JACK] or matches
    if not matches:
        raise fail(f"no {kind} device matches {wanted!r}")
    if len(matches) > 1:
        names = ", ".join(f"{d['index']}: {d['name']} ({d['hostapi_name']})" for d in matches)
        raise fail(f"{wanted!r} matches several {kind} devices ({names}); give the index")
    return int(matches[0]["index"])


def check_settings(device: int, samplerate: float, channels: int,
                   input_channels: int | None = None) -> None:
    """Raise ``DeviceError`` unless ``device`` can stream at this rate and channel count.

    Args:
        device: PortAudio device index.
        samplerate: Hz.
        channels: output channels (0: no output).
        input_channels: input channels; None means the same as ``channels`` (0: no input).
    """
    sd = _sd()
    devs = _devices()
    if not 0 <= device < len(devs):
        raise DeviceError(f"no device with index {device}\n{list_devices()}")
    d = devs[device]
    n_in = channels if input_channels is None else input_channels
    about = (f"device {device} {d['name']!r} ({d['hostapi_name']}) has "
             f"{d['max_input_channels']} input / {d['max_output_channels']} output channels, "
             f"default rate {d['default_samplerate']:.0f} Hz")
    if d["hostapi_name"] == JACK:
        about += " (a JACK device runs only at the server's rate)"
    for what, n, check in (("input", n_in, sd.check_input_settings),
                           ("output", channels, sd.check_output_settings)):
        if n <= 0:
            continue
        try:
            check(device=device, samplerate=samplerate, channels=n, dtype="float32")
        except sd.PortAudioError as e:
            msg = e.args[0] if e.args else str(e)
            raise DeviceError(f"device {device} cannot stream {n} {what} "
                              f"channel{'s' if n != 1 else ''} at {samplerate:g} Hz ({msg}); "
                              f"{about}") from None
