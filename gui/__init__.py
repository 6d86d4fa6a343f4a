"""rtfx's rack window (PyQt6): edit a chain live on the engine process, watch its timing.

Start it with ``rtfx gui`` or ``python -m gui``. The window never runs audio itself: the
engine process (``rtfx.live.process.EngineProcess``) owns the stream and the chain, the
window sends it small control messages and polls its meters from shared memory.
"""
