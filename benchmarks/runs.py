"""What every benchmark reports about repeated runs: the median and spread of a figure over
its runs, and the machine's load average while they ran (figures from a busy machine are
only comparable within one run of a script: compare ratios, not rates)."""

from __future__ import annotations

import os
import statistics


def summary(values: list[float], digits: int = 3) -> dict:
    """The runs' values, their median, and their spread (max - min, and that over the
    median)."""
    median = statistics.median(values)
    spread = max(values) - min(values)
    return {
        "runs": [round(v, digits) for v in values],
        "median": round(median, digits),
        "spread": round(spread, digits),
        "spread_of_median": round(spread / median, 3) if median else None,
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine has ``os.cpu_count()`` cores)."""
    return [round(v, 2) for v in os.getloadavg()]
