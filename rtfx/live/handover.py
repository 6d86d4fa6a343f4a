"""A new chain taking over from the one playing, without a click.

The new ``BlockProcessor`` first *shadows* the playing one for a while: it gets the same input
blocks and its output is dropped, so its state (filter memories, delay lines, reverb tails)
fills with the same recent signal as the playing chain's. Then both run and the output
crossfades linearly to the new one. A structure change needs no shadow (the new chain sounds
different anyway); a move between CPU and CUDA shadows for the chain's memory
(``Effect.tail_seconds``), so the two outputs are nearly equal when the crossfade starts.
"""
from __future__ import annotations

import numpy as np

from ..stream import BlockProcessor


class Handover:
    """Moves the output from the playing processor to ``processor``. Audio thread only after
    construction (everything is allocated here).

    Args:
        processor: the incoming processor (prepared, same block size and channels).
        fade_blocks: blocks of the linear crossfade (>= 1).
        shadow_blocks: blocks it runs unheard before the crossfade starts.
    """

    def __init__(self, processor: BlockProcessor, fade_blocks: int, shadow_blocks: int = 0) -> None:
        self.processor = processor
        self.fade_blocks = max(1, fade_blocks)
        self.shadow_blocks = shadow_blocks
        self._step = -shadow_blocks  # < 0: shadowing; 0 .. fade_blocks - 1: fading
        spec = processor.spec
        self._other = np.zeros((spec.blocksize, spec.channels), dtype=np.float32)
        self._fade = np.zeros((spec.blocksize, 1), dtype=np.float32)
        self._ramp = np.arange(1, spec.blocksize + 1, dtype=np.float32)[:, None]

    @property
    def shadowing(self) -> bool:
        """True while the new processor runs unheard."""
        return self._step < 0

    def run(self, chain_in: np.ndarray, outdata: np.ndarray) -> bool:
        """Run the incoming processor on ``chain_in`` and blend it into ``outdata`` (the
        playing one's output, ``(frames, channels)``). True when it has fully taken over."""
        frames = len(chain_in)
        other = self._other[:frames]
        self.processor.process(chain_in, other)
        if self._step >= 0:
            fade = self._fade[:frames]
            np.add(self._ramp[:frames], self._step * frames, out=fade)
            fade /= self.fade_blocks * frames
            other -= outdata
            other *= fade
            outdata += other
        self._step += 1
        return self._step >= self.fade_blocks
