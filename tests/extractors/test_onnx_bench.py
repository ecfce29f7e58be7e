"""The benchmark's rate measurement: items per second from the median call time."""

from __future__ import annotations

import itertools
import time

from bench_drivers import bench_module

throughput = bench_module("extractors").throughput


def test_throughput_is_batch_over_median_call_time_and_ignores_one_slow_call():
    delays = itertools.chain([0.0], [0.01, 0.01, 0.2, 0.01, 0.01], itertools.repeat(0.01))  # warm-up, then a spike
    calls = []

    def fn() -> None:
        calls.append(1)
        time.sleep(next(delays))

    rate = throughput(fn, batch=4, min_seconds=0.0, min_reps=5)
    assert len(calls) == 6  # one warm-up call plus min_reps timed calls
    assert 250 < rate <= 400.5  # 4 items / ~10 ms; the 200 ms spike does not drag it down to a mean-based ~80
