"""Device selection and the virtual sound card: a real JACK server (dummy driver) and real
PortAudio streams. Skipped only where ``jackd`` is not installed (CI installs jackd2)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest
import sounddevice as sd

from rtfx.live import virtual
from rtfx.live.devices import JACK, DeviceError, check_settings, find_device, list_devices
from rtfx.live.virtual import JackDummyServer

RATE, PERIOD = 48000, 256


def _jackd_running(name: str) -> bool:
    """Whether a jackd process for server ``name`` exists (read from /proc)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == b"jackd" and name.encode() in args:
            return True
    return False


@pytest.fixture(scope="module")
def jack():
    if shutil.which("jackd") is None:
        pytest.skip("jackd not installed: install Debian's jackd2 (make setup does)")
    with JackDummyServer(RATE, PERIOD) as server:
        yield server
    assert not _jackd_running(server.name), "jackd still running after the server's exit"
    assert JACK not in [a["name"] for a in sd.query_hostapis()]


@pytest.fixture
def dev(jack) -> int:
    return find_device(None, "duplex")


def test_jack_host_api_and_device(jack, dev):
    assert JACK in [a["name"] for a in sd.query_hostapis()]
    info = sd.query_devices(dev)
    assert sd.query_hostapis(info["hostapi"])["name"] == JACK
    assert info["name"] == "system"
    assert (info["max_input_channels"], info["max_output_channels"]) == (2, 2)
    assert info["default_samplerate"] == RATE
    table = list_devices()
    assert JACK in table and "system" in table and "48000" in table
    assert isinstance(jack.realtime, bool)


def test_find_device_by_name_and_index(dev):
    assert find_device("system", "duplex") == dev
    assert find_device("SYST", "input") == dev
    assert find_device("system jack", "output") == dev
    assert find_device(dev, "output") == dev
    assert find_device(str(dev), "duplex") == dev


def test_unknown_device_lists_devices(dev):
    with pytest.raises(DeviceError) as e:
        find_device("no such card", "output")
    msg = str(e.value)
    assert "'no such card'" in msg and "system" in msg and JACK in msg
    with pytest.raises(ValueError, match="index 999"):
        find_device(999, "duplex")


def test_unsupported_settings(dev):
    check_settings(dev, RATE, 2)
    check_settings(dev, RATE, 2, input_channels=0)
    with pytest.raises(DeviceError, match=r"3 output channels.*2 input / 2 output.*48000 Hz"):
        check_settings(dev, RATE, 3, input_channels=0)
    with pytest.raises(DeviceError, match=r"3 input channels"):
        check_settings(dev, RATE, 2, input_channels=3)
    with pytest.raises(DeviceError, match=r"44100 Hz.*default rate 48000 Hz"):
        check_settings(dev, 44100, 2)


def test_duplex_stream_callback_rate(dev):
    calls, frames, flags = [0], set(), [0]

    def callback(indata, outdata, n, t, status):
        calls[0] += 1
        frames.add(n)
        flags[0] += bool(status)
        outdata.fill(0)

    with sd.Stream(device=dev, samplerate=RATE, blocksize=PERIOD, channels=2,
                   dtype="float32", callback=callback):
        time.sleep(0.2)
        n0, t0 = calls[0], time.monotonic()
        time.sleep(1.0)
        n1, t1 = calls[0], time.monotonic()
    rate = (n1 - n0) / (t1 - t0)
    print(f"callbacks: {rate:.1f}/s (expect {RATE / PERIOD}), status flags: {flags[0]}")
    assert frames == {PERIOD}
    assert abs(rate / (RATE / PERIOD) - 1) < 0.15


@pytest.mark.parametrize("blocksize, latency", [(256, 512), (0, 256), (64, 320)])
def test_loopback_returns_output_bit_exactly(jack, dev, blocksize, latency):
    """out_N -> in_N comes back exactly, ``period + blocksize`` frames later (blocksize 0:
    PortAudio hands over JACK's own buffers, one period). ``Stream.latency`` says so too."""
    burst = np.random.default_rng(0).uniform(-0.5, 0.5, (1000, 2)).astype(np.float32)
    total = RATE // 4                         # frames recorded from the moment of arming
    rec = np.zeros((total, 2), np.float32)
    st = {"pos": 0, "armed": False, "origin": None}

    def callback(indata, outdata, n, t, status):
        p = st["pos"]
        if st["armed"] and st["origin"] is None:
            st["origin"] = p                  # the burst starts 4 periods later
        outdata.fill(0)
        o = st["origin"]
        if o is not None:
            s = o + 4 * PERIOD                # the part of the burst inside [p, p + n)
            a, b = max(p, s), min(p + n, s + len(burst))
            if a < b:
                outdata[a - p : b - p] = burst[a - s : b - s]
            if p + n <= o + total:
                rec[p - o : p - o + n] = indata
        st["pos"] = p + n

    with sd.Stream(device=dev, samplerate=RATE, blocksize=blocksize, channels=2,
                   dtype="float32", callback=callback) as stream:
        pairs = jack.loopback()
        st["armed"] = True
        deadline = time.monotonic() + 10
        while (st["origin"] is None or st["pos"] < st["origin"] + total) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        reported = round(stream.latency[1] * RATE)
    # port numbers run on over the streams of one PortAudio session: compare the pattern
    assert [tuple(p.rstrip("0123456789") for p in pair) for pair in pairs] == \
        [("PortAudio:out_", "PortAudio:in_")] * 2
    assert st["origin"] is not None and st["pos"] >= st["origin"] + total, "the stream stalled"
    start = 4 * PERIOD                        # burst start, in rec's frames
    found = int(np.flatnonzero(np.any(rec != 0, axis=1))[0]) - start
    print(f"blocksize {blocksize}: loopback latency {found} frames (Stream.latency {reported})")
    assert found == latency == reported
    back = rec[start + latency : start + latency + len(burst)]
    np.testing.assert_array_equal(back, burst)  # bit-exact, channels in order
    rest = rec.copy()
    rest[start + latency : start + latency + len(burst)] = 0
    assert not rest.any()


def test_second_server_nests_and_is_gone_after(jack):
    with JackDummyServer(RATE, 128) as inner:
        assert os.environ["JACK_DEFAULT_SERVER"] == inner.name != jack.name
        assert _jackd_running(inner.name)
        assert "system:capture_1" in inner.ports()
        pid = inner.process.pid
    assert not _jackd_running(inner.name)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert os.environ["JACK_DEFAULT_SERVER"] == jack.name
    assert JACK in [a["name"] for a in sd.query_hostapis()]  # the outer one again
    r = subprocess.run(["jack_wait", "-s", inner.name, "-c"], capture_output=True, text=True)
    assert r.stdout.strip() == "not running"


def _fill_registry_with_dead_servers() -> list[str]:
    """Write a dead server (a reaped pid) into every free slot of JACK's registry, as a
    SIGKILLed jackd leaves it, with a leftover semaphore file each; their names."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    names = []
    with open("/dev/shm/jack-shm-registry", "r+b") as f:
        for slot in range(virtual._SERVER_SLOTS):
            offset = virtual._REGISTRY_HEAD + slot * virtual._SLOT_BYTES
            f.seek(offset)
            if int.from_bytes(f.read(4), "little") == 0:
                name = f"rtfx-{dead.pid}-{slot}"
                f.seek(offset)
                f.write(dead.pid.to_bytes(4, "little") + f"jack-{os.getuid()}:{name}:".encode())
                open(f"/dev/shm/jack_sem.0_{name}_PortAudio", "w").close()
                names.append(name)
    return names


def test_servers_start_when_dead_servers_fill_the_registry(jack):
    names = _fill_registry_with_dead_servers()
    assert names, "no free slot to fill"
    with JackDummyServer(RATE, 128) as inner:  # beside the running outer server
        assert "system:capture_1" in inner.ports()
    assert "system:capture_1" in jack.ports()  # the live server kept its slot
    assert not [n for n in names if os.path.exists(f"/dev/shm/jack_sem.0_{n}_PortAudio")]


def test_clear_errors(jack, monkeypatch):
    with pytest.raises(RuntimeError, match="already running"):
        JackDummyServer(name=jack.name).start()
    monkeypatch.setattr(virtual.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="jackd not found: install Debian's jackd2"):
        JackDummyServer().start()
