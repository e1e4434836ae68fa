"""HDR histograms (the ``hdrhistogram`` package): creation, fast bulk recording, merging.

All values are nanoseconds. Histograms travel between processes as the package's
compressed base64 encoding (``encode()`` / ``decode()``) and are merged with ``add()``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = [
    "HIGHEST_NS",
    "PERCENTILES",
    "SERIES_SIGNIFICANT_FIGURES",
    "decode",
    "merge",
    "new_histogram",
    "record_many",
    "spectrum_us",
    "summary_us",
]

LOWEST_NS = 1
HIGHEST_NS = 120 * 1_000_000_000  # 2 minutes: larger values are clamped
SIGNIFICANT_FIGURES = 3
SERIES_SIGNIFICANT_FIGURES = 2  # per-second histograms: smaller, 1 % resolution
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
)


def new_histogram(significant_figures: int = SIGNIFICANT_FIGURES) -> HdrHistogram:
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, significant_figures)


def record_many(hist: HdrHistogram, values_ns: np.ndarray) -> None:
    """Record many values at once. Values are first reduced to the lowest value of their
    HDR bucket (exactly the bucketing ``record_value`` applies, for a histogram whose
    lowest trackable value is 1), then recorded once per distinct bucket with its count, so
    a million samples cost a few thousand ``record_value`` calls."""
    if values_ns.size == 0:
        return
    v = np.clip(values_ns.astype(np.int64), 0, HIGHEST_NS)
    sub_bits = int(hist.sub_bucket_count).bit_length() - 1  # sub_bucket_count = 2**sub_bits
    thresholds = np.array([1 << (sub_bits + k) for k in range(48)], dtype=np.int64)
    shift = np.searchsorted(thresholds, v, side="right")  # = max(0, bit_length(v) - sub_bits)
    v = (v >> shift) << shift
    values, counts = np.unique(v, return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        hist.record_value(value, count)


def decode(encoded: str | bytes) -> HdrHistogram:
    return HdrHistogram.decode(encoded)


def merge(
    encoded: Iterable[str | bytes], significant_figures: int = SIGNIFICANT_FIGURES
) -> HdrHistogram:
    out = new_histogram(significant_figures)
    for item in encoded:
        out.add(decode(item))
    return out


def summary_us(hist: HdrHistogram) -> dict[str, float | int]:
    """count, mean, percentiles and max in microseconds."""
    count = hist.get_total_count()
    out: dict[str, float | int] = {"count": int(count)}
    if count == 0:
        for name, _ in PERCENTILES:
            out[name] = 0.0
        out["max"] = out["mean"] = out["min"] = 0.0
        return out
    for name, pct in PERCENTILES:
        out[name] = hist.get_value_at_percentile(pct) / 1e3
    out["max"] = hist.get_max_value() / 1e3
    out["min"] = hist.get_min_value() / 1e3
    out["mean"] = float(hist.get_mean_value()) / 1e3
    return out


def spectrum_us(hist: HdrHistogram, points: int = 200) -> list[tuple[float, float]]:
    """(percentile, value in µs) pairs for a percentile-spectrum plot, denser in the tail."""
    if hist.get_total_count() == 0:
        return []
    out = []
    for k in range(points + 1):
        # 0 .. 99.999 %: evenly spaced in log(1 / (1 - p))
        p = 100.0 * (1.0 - 10.0 ** (-5.0 * k / points))
        out.append((p, hist.get_value_at_percentile(p) / 1e3))
    out.append((100.0, hist.get_max_value() / 1e3))
    return out
