"""The one timer in EdgeGAN: interleaved latency, shared by every benchmark, profile, export and report.

One call of each runner in turn, round after round: on a shared or thermally throttling machine every
runner sees the same load, so ratios between them stay honest even when absolute times drift.
Torch-free (the runtime's bench uses it on devices without torch).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable


def interleaved_times(runners: dict[Hashable, Callable[[], object]], runs: int,
                      warmup: int = 5) -> dict[Hashable, list[float]]:
    """Milliseconds of each of ``runs`` timed calls per runner, after ``warmup`` untimed rounds."""
    times: dict[Hashable, list[float]] = {k: [] for k in runners}
    for i in range(warmup + runs):
        for key, run in runners.items():
            t = time.perf_counter()
            run()
            if i >= warmup:
                times[key].append((time.perf_counter() - t) * 1e3)
    return times


def time_interleaved(runners: dict[Hashable, Callable[[], object]], runs: int,
                     warmup: int = 5) -> dict[Hashable, float]:
    """Median milliseconds per call of each runner (see :func:`interleaved_times`)."""
    return {k: statistics.median(v) for k, v in interleaved_times(runners, runs, warmup).items()}


def median_ms(run: Callable[[], object], runs: int, warmup: int = 5) -> float:
    """Median milliseconds per call of one runner."""
    return time_interleaved({0: run}, runs, warmup)[0]


def p90(times: list[float]) -> float:
    """The 90th-percentile value of ``times`` (nearest rank)."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
