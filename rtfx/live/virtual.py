"""A virtual sound card: a real JACK server on the dummy driver (a clock, no hardware).

``JackDummyServer`` starts ``jackd -n NAME -R -d dummy -r RATE -p PERIOD`` under its own
server name and points this process at it through ``JACK_DEFAULT_SERVER``, so PortAudio lists
it as host API "JACK Audio Connection Kit" (device "system") and a user's own JACK server is
left alone. PortAudio is one JACK client, ``PortAudio`` (``PortAudio-01`` for a second
process); each stream registers ports ``in_K``/``out_K`` when opened (K from two counters
that run on over all streams, see ``loopback``) and connects them to ``system:capture_1...`` /
``system:playback_1...`` when started.

    with JackDummyServer(48000, 256) as jack:
        with sd.Stream(device=find_device(None, "duplex"), blocksize=256, ...) as s:
            jack.loopback()          # PortAudio:out_N -> PortAudio:in_N
"""
from __future__ import annotations

import atexit
import glob
import itertools
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time

_ENV = "JACK_DEFAULT_SERVER"
_ids = itertools.count()
# jackd2's shm registry header: magic, protocol, type, sizes, then 8 server slots of
# {pid_t pid; char name[257]} padded to 264 bytes (jack/shm.h, checked against hdr_len).
_REGISTRY_MAGIC, _REGISTRY_HEAD, _SERVER_SLOTS, _SLOT_BYTES = 0x4A41434B, 24, 8, 264


class JackDummyServer:
    """Context manager running a JACK server on the dummy driver for this process.

    Args:
        samplerate: server rate in Hz.
        period: frames per JACK cycle (callback period = period / samplerate seconds).
        name: JACK server name; None picks a unique ``rtfx-<pid>-<n>``.
        channels: number of ``system:capture_N`` / ``system:playback_N`` ports, which is the
            channel count PortAudio reports for the device.

    Attributes:
        realtime: whether the server's cycle thread runs SCHED_FIFO (``-R`` took effect).
            Without it, a loaded machine drops cycles.
        process: the ``jackd`` ``subprocess.Popen`` while running.
    """

    def __init__(self, samplerate: int = 48000, period: int = 256, name: str | None = None,
                 channels: int = 2) -> None:
        self.samplerate, self.period, self.channels = int(samplerate), int(period), int(channels)
        self.name = name or f"rtfx-{os.getpid()}-{next(_ids)}"
        self.realtime: bool | None = None
        self.process: subprocess.Popen | None = None
        self._old_env: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> "JackDummyServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start jackd (realtime, else without), wait for it, re-initialise PortAudio."""
        if self.process is not None:
            return
        jackd = shutil.which("jackd")
        if jackd is None or shutil.which("jack_wait") is None:
            raise RuntimeError("jackd not found: install Debian's jackd2 (make setup does)")
        if self._jack("jack_wait", "-c", check=False).strip() == "running":
            raise RuntimeError(f"a JACK server named {self.name!r} is already running")
        import sounddevice as sd  # before jackd: a missing PortAudio must not leak a server
        for realtime in (True, False, False):
            _free_dead_server_slots()
            ok, log = self._launch(jackd, realtime)
            if ok:
                break
        else:
            tail = "\n".join(log.strip().splitlines()[-8:])
            raise RuntimeError(f"jackd did not start (server {self.name!r}):\n{tail}")
        self._old_env = os.environ.get(_ENV)
        os.environ[_ENV] = self.name  # libjack, inside PortAudio, connects to this server
        atexit.register(self.stop)
        sd._terminate()  # PortAudio lists host APIs only when it is initialised
        sd._initialize()

    def _launch(self, jackd: str, realtime: bool) -> tuple[bool, str]:
        """One attempt: start jackd, wait up to 5 s until clients can connect; (ok, log)."""
        cmd = [jackd, "-n", self.name, "-R" if realtime else "--no-realtime",
               "-d", "dummy", "-r", str(self.samplerate), "-p", str(self.period),
               "-C", str(self.channels), "-P", str(self.channels)]
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
            try:
                wait = subprocess.Popen(["jack_wait", "-s", self.name, "-w", "-t", "5"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                while wait.poll() is None and proc.poll() is None:
                    time.sleep(0.02)  # a jackd that dies at once need not cost 5 s
                _kill(wait)
            except BaseException:  # Ctrl-C while waiting: leave no server behind
                _kill(proc)
                raise
            ok = wait.returncode == 0 and proc.poll() is None
            if ok:
                self.process = proc
                # jackd2 with -R but no privilege still runs, without SCHED_FIFO: look.
                self.realtime = realtime and _has_fifo_thread(proc.pid)
            else:
                _kill(proc)
            log.seek(0)
            return ok, log.read()

    def stop(self) -> None:
        """Terminate PortAudio, stop jackd (SIGTERM; SIGKILL after 5 s), re-initialise it.

        Close your streams first: PortAudio's terminate frees them under sounddevice's feet.
        """
        if self.process is None:
            return
        import sounddevice as sd
        proc, self.process = self.process, None
        try:
            sd._terminate()  # before jackd goes, or libjack aborts the process at exit
        except sd.PortAudioError:
            pass  # not initialised: nothing holds the server
        _kill(proc)
        atexit.unregister(self.stop)
        if self._old_env is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = self._old_env
        sd._initialize()

    # ------------------------------------------------------------------ graph helpers
    def _jack(self, tool: str, *args: str, check: bool = True) -> str:
        """Run a JACK tool against this server; its stdout."""
        r = subprocess.run([tool, "-s", self.name, *args], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {(r.stderr or r.stdout).strip()}")
        return r.stdout

    def _graph(self) -> dict[str, list[str]]:
        """Every port with the ports connected to it (one ``jack_lsp -c``)."""
        graph: dict[str, list[str]] = {}
        current = None
        for line in self._jack("jack_lsp", "-c").splitlines():
            if line and not line[0].isspace():
                current = line.strip()
                graph[current] = []
            elif current is not None and line.strip():
                graph[current].append(line.strip())
        return graph

    def ports(self, *filters: str) -> list[str]:
        """Names of all JACK ports (``client:port``) whose names contain every filter."""
        return [p for p in self._graph() if all(f in p for f in filters)]

    def connect(self, source: str, dest: str) -> None:
        """Connect output port ``source`` to input port ``dest`` (both ``client:port``)."""
        self._jack("jack_connect", source, dest)

    def disconnect(self, source: str, dest: str) -> None:
        """Remove the connection ``source -> dest``."""
        self._jack("jack_disconnect", source, dest)

    def loopback(self, client: str = "PortAudio") -> list[tuple[str, str]]:
        """Wire the k-th ``client:out_N`` to the k-th ``client:in_M`` of a started stream.

        PortAudio numbers ports with two counters (inputs, outputs) that run on over all
        streams until it is re-initialised: a first duplex stereo stream has ``in_0, in_1,
        out_0, out_1``, the next one ``in_2, in_3, out_2, out_3`` (after an input-only one the
        numbers differ), so ports are paired in order; have one stream open. The inputs'
        other connections (``system:capture_N``) are removed, so the stream records exactly
        what it played, ``period + blocksize`` frames later (blocksize 0: one period).
        Call it after ``start()``: stopping a stream disconnects its ports.
        Returns the (source, dest) pairs made.
        """
        graph = self._graph()

        def numbered(prefix: str) -> list[str]:
            head = f"{client}:{prefix}"
            found = [(int(p[len(head):]), p) for p in graph
                     if p.startswith(head) and p[len(head):].isdigit()]
            return [p for _, p in sorted(found)]
        pairs = list(zip(numbered("out_"), numbered("in_")))
        if not pairs:
            raise RuntimeError(f"no {client}:out_N/in_N ports; start a duplex stream first "
                               f"(ports now: {', '.join(graph) or 'none'})")
        for src, dst in pairs:
            for other in graph[dst]:
                self.disconnect(other, dst)
            self.connect(src, dst)
        return pairs


def _free_dead_server_slots() -> None:
    """Free the JACK registry slots of servers that died without unregistering.

    jackd2's registry (``/dev/shm/jack-shm-registry``) holds 8 server slots ``{pid, name}``.
    A server killed with SIGKILL (a test of a vanished device does that) keeps its slot, and
    jackd reclaims a dead slot only for a server of the same name: ours are unique, so after
    8 such deaths every new server fails with "Failed to open server". This zeroes the slots
    whose pid is gone and removes the leftover segment and semaphore files of our own
    (``rtfx-*``) servers that are not running. Live servers are never touched.
    """
    registry = "/dev/shm/jack-shm-registry"
    try:
        with open(registry, "r+b") as f:
            head = f.read(_REGISTRY_HEAD + _SERVER_SLOTS * _SLOT_BYTES)
            magic, hdr_len = struct.unpack_from("<I", head, 0)[0], struct.unpack_from("<I", head, 16)[0]
            if magic != _REGISTRY_MAGIC or hdr_len != len(head):
                return  # another layout: leave it to jackd
            live = set()
            for slot in range(_SERVER_SLOTS):
                offset = _REGISTRY_HEAD + slot * _SLOT_BYTES
                pid = struct.unpack_from("<i", head, offset)[0]
                if pid == 0:
                    continue
                if _alive(pid):  # the slot's name reads "jack-<uid>:<server name>:"
                    live.add(head[offset + 4:offset + _SLOT_BYTES].split(b"\0")[0].decode(errors="replace"))
                else:
                    f.seek(offset)
                    f.write(bytes(_SLOT_BYTES))
    except OSError:
        return
    for path in glob.glob("/dev/shm/jack_*rtfx-*"):
        found = re.search(r"rtfx-\d+-\d+", os.path.basename(path))
        if found and not any(f":{found.group()}:" in slot for slot in live):
            try:
                os.remove(path)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _has_fifo_thread(pid: int) -> bool:
    """Whether any thread of ``pid`` runs a realtime policy (SCHED_FIFO / SCHED_RR)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
        return any(os.sched_getscheduler(int(t)) in (os.SCHED_FIFO, os.SCHED_RR) for t in tids)
    except (OSError, AttributeError):
        return False


def _kill(proc: subprocess.Popen) -> None:
    """SIGTERM, wait 5 s, then SIGKILL; always reaps the process."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
