"""The virtual device for the window: a JACK dummy server kept by a small helper process.

``rtfx.live.virtual.JackDummyServer`` re-initialises PortAudio in the process that starts it,
which makes that process a JACK client; if the server then dies (a "lost device"), PortAudio
asserts when it is next terminated. The window must survive that, so the server is started
by a helper process, and only the engine process (spawned with ``JACK_DEFAULT_SERVER`` set)
connects to it.
"""
from __future__ import annotations

import multiprocessing as mp
import os

_ENV = "JACK_DEFAULT_SERVER"


def _keep_server(conn, samplerate: int, period: int) -> None:
    from rtfx.live.virtual import JackDummyServer

    try:
        server = JackDummyServer(samplerate=samplerate, period=period)
        server.start()
    except RuntimeError as error:
        conn.send(("error", str(error)))
        return
    conn.send(("started", server.name, server.process.pid))
    try:
        conn.recv()  # any message (or the window gone): stop
    except EOFError:
        pass
    if server.process.poll() is not None:  # the server died: PortAudio's teardown would assert
        os._exit(0)
    server.stop()
    try:
        conn.send(("stopped",))
    except (OSError, ValueError):
        pass


class VirtualDevice:
    """A JACK dummy server at ``samplerate`` Hz with ``period``-frame cycles, for engines this
    process spawns (``JACK_DEFAULT_SERVER`` is set here while it runs)."""

    def __init__(self, samplerate: int, period: int) -> None:
        self.samplerate, self.period = samplerate, period
        self.name: str | None = None
        self.jackd_pid: int | None = None
        self._old_env = os.environ.get(_ENV)
        context = mp.get_context("spawn")
        self._conn, child = context.Pipe()
        self._helper = context.Process(target=_keep_server, args=(child, samplerate, period),
                                       name="rtfx-virtual-device", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start the server; raises ``RuntimeError`` if it cannot."""
        self._helper.start()
        if not self._conn.poll(timeout):
            self.stop()
            raise RuntimeError("the JACK dummy server did not start in time")
        reply = self._conn.recv()
        if reply[0] != "started":
            self.stop()
            raise RuntimeError(reply[1])
        _, self.name, self.jackd_pid = reply
        os.environ[_ENV] = self.name

    def stop(self) -> None:
        """Stop the server (the helper is killed if its teardown hangs on a dead server)."""
        try:
            self._conn.send(("stop",))
        except (OSError, ValueError):
            pass
        if self._helper.pid is not None:
            if self._stopped_cleanly(8.0):
                self.jackd_pid = None  # reaped by the helper: its pid may be reused
            self._helper.join(8.0)
            if self._helper.is_alive():
                self._helper.kill()
                self._helper.join(1.0)
        if self.jackd_pid is not None and _is_jackd(self.jackd_pid):  # one the helper could not stop
            try:
                os.kill(self.jackd_pid, 9)
            except OSError:
                pass
        self.jackd_pid = None
        if self._old_env is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = self._old_env

    def _stopped_cleanly(self, timeout: float) -> bool:
        """Whether the helper reports the server stopped (and unregistered) within ``timeout`` s."""
        try:
            return self._conn.poll(timeout) and self._conn.recv() == ("stopped",)
        except (OSError, EOFError):
            return False


def _is_jackd(pid: int) -> bool:
    """Whether ``pid`` is (still) a jackd process."""
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().strip() == "jackd"
    except OSError:
        return False
