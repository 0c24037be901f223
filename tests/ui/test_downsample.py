"""Series downsampled for charts: at most N points, spikes kept, first and last kept, fast."""

from __future__ import annotations

import time

import numpy as np

from runhistory.ui.downsample import downsample, numeric_values


def test_a_short_series_is_left_whole() -> None:
    x, y = np.arange(10.0), np.linspace(0, 1, 10)
    result = downsample(x, y, 100)
    assert result.count == 10 and result.x.tolist() == x.tolist() and result.y.tolist() == y.tolist()


def test_a_long_series_keeps_at_most_n_points_with_its_spikes_and_ends() -> None:
    y = np.sin(np.arange(100_000) / 500.0)
    y[31_337] = 50.0  # one-point spikes, up and down
    y[77_777] = -40.0
    result = downsample(np.arange(len(y), dtype=float), y, 2000)
    assert len(result.x) <= 2000 and result.count == 100_000
    assert result.y.max() == 50.0 and result.y.min() == -40.0
    assert 31_337 in result.x and 77_777 in result.x
    assert result.x[0] == 0 and result.x[-1] == 99_999 and result.y[-1] == y[-1]
    assert np.all(np.diff(result.x) > 0), "points stay in x order"


def test_a_million_points_take_well_under_a_tenth_of_a_second() -> None:
    y = np.random.default_rng(0).normal(size=1_000_000)
    x = np.arange(1_000_000, dtype=float)
    downsample(x, y, 2000)  # warm up
    started = time.perf_counter()
    result = downsample(x, y, 2000)
    elapsed = time.perf_counter() - started
    assert len(result.y) <= 2000 and result.y.max() == y.max() and result.y.min() == y.min()
    assert elapsed < 0.1, f"downsampling 1M points took {elapsed:.3f} s"


def test_non_finite_values_are_left_out() -> None:
    y = np.array([1.0, np.nan, 3.0, np.inf, 5.0])
    result = downsample(np.arange(5.0), y, 100)
    assert result.y.tolist() == [1.0, 3.0, 5.0] and result.x.tolist() == [0.0, 2.0, 4.0] and result.count == 5


def test_text_values_are_not_numeric() -> None:
    assert numeric_values(["a", "b"]) is None
    assert numeric_values([1, 2.5]).tolist() == [1.0, 2.5]
