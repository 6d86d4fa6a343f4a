"""Block meters: the ring of DSP times, deadline misses, PortAudio flags."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from rtfx.live.meters import BlockMeters


def test_recent_window_and_wraparound():
    meters = BlockMeters(48000, 128, capacity=8)
    for i in range(1, 12):
        meters.record(i * 1000, 128)
    assert meters.dsp_times_us().tolist() == [4, 5, 6, 7, 8, 9, 10, 11]
    assert meters.dsp_times_us(3).tolist() == [9, 10, 11]
    summary = meters.summary(3)
    assert summary["blocks"] == 11 and summary["dsp_us"]["max"] == 11.0
    assert summary["load_p99"] == round(np.percentile([9, 10, 11], 99) / summary["deadline_us"], 4)


def test_deadline_misses_scale_with_the_block_length():
    meters = BlockMeters(48000, 128)  # deadline 2667 us for 128 frames
    meters.record(2_000_000, 128)  # 2.0 ms of 2.67: in time
    meters.record(2_000_000, 64)  # 2.0 ms of 1.33: late
    meters.record(3_000_000, 128)  # late
    assert meters.deadline_misses == 2


def test_portaudio_flags_are_counted_as_xruns():
    meters = BlockMeters(48000, 128)
    flags = dict(input_overflow=True, input_underflow=False, output_overflow=False, output_underflow=True)
    meters.add_status(SimpleNamespace(**flags))
    assert meters.xruns == 2 and meters.summary()["xrun_flags"]["output_underflow"] == 1
