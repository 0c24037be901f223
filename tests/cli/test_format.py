"""The text formatting of the commands."""

from __future__ import annotations

import time

import pytest

from runhistory.cli.format import (
    format_duration,
    format_number,
    format_short_time,
    format_time,
    format_value,
    run_duration,
)
from runhistory.core.sizes import format_size


@pytest.mark.parametrize(
    "value, text",
    [
        (0.25, "0.25"),
        (0.9876543219, "0.987654"),
        (123456789.0, "1.23457e+08"),
        (1e-7, "1e-07"),
        (12, "12"),
        (10**20, "100000000000000000000"),
        (True, "1"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
    ],
)
def test_numbers_are_compact(value, text):
    assert format_number(value) == text


def test_values_of_every_kind_are_one_line():
    assert format_value(None) == ""
    assert format_value("two\nlines") == "two lines"
    assert format_value({"fpr": 0.1, "tpr": float("nan")}) == "fpr=0.1, tpr=nan"
    assert format_value([1, 2.5]) == "[1, 2.5]"


@pytest.mark.parametrize(
    "seconds, text",
    [(None, ""), (0.04, "0.0s"), (4.26, "4.3s"), (42.9, "42s"), (185, "3m 05s"), (7380, "2h 03m"), (273600, "3d 04h")],
)
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_duration_of_a_run_that_has_not_ended_runs_to_now():
    assert run_duration(None, None) is None
    assert run_duration(100.0, 160.0) == 60.0
    assert run_duration(100.0, None, now=130.0) == 30.0


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (50 * 2**20, "50 MiB")])
def test_sizes(size, text):
    assert format_size(size) == text


def test_times_are_local_and_short_in_tables():
    stamp = time.mktime((2024, 3, 5, 14, 7, 9, 0, 0, -1))
    assert format_time(stamp) == "2024-03-05 14:07:09"
    assert format_time(None) == ""
    assert format_short_time(stamp, now=stamp + 86400) == "03-05 14:07"
    assert format_short_time(stamp, now=stamp + 400 * 86400) == "2024-03-05"
