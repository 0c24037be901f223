"""What TensorBoard itself reads from an event file, and what runhistory's decoder reads, side by side."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.util import tensor_util

from runhistory.eventlogs.decode import DecodedEvents, TagPlugins, decode_records
from runhistory.eventlogs.records import scan_records

SCALARS, TEXT, HPARAMS = "scalars", "text", "hparams"


@dataclass
class TagEvents:
    """One tag as TensorBoard serves it: its plugin, and each event's step, wall time and value."""

    plugin: str
    steps: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)


def tensorboard_tags(path: Path) -> dict[str, TagEvents]:
    """Every tag of one event file as TensorBoard's plugin accumulator reads it (no sampling):
    scalars as floats, text as its strings joined by new lines, other kinds as their arrays."""
    accumulator = plugin_event_accumulator.EventAccumulator(
        str(path), size_guidance={plugin_event_accumulator.TENSORS: 0}, purge_orphaned_data=False
    )
    accumulator.Reload()
    tags: dict[str, TagEvents] = {}
    for tag in accumulator.Tags()[plugin_event_accumulator.TENSORS]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        events = tags[tag] = TagEvents(plugin)
        for event in accumulator.Tensors(tag):
            array = tensor_util.make_ndarray(event.tensor_proto)
            events.steps.append(event.step)
            events.times.append(event.wall_time)
            events.values.append(_value(plugin, array))
    return tags


def _value(plugin: str, array: np.ndarray) -> Any:
    if plugin == SCALARS:
        return float(array.ravel()[0])
    if plugin == TEXT:
        return "\n".join(item.decode("utf-8") for item in array.ravel())
    return array


def decode_file(path: Path) -> DecodedEvents:
    """The whole file through runhistory's scan and decoder, in one read."""
    data = path.read_bytes()
    return decode_records(data, scan_records(data), plugins=TagPlugins())


def event_file_paths(folder: Path) -> list[Path]:
    """Every event file under ``folder``, sorted."""
    return sorted(path for path in folder.rglob("*") if "tfevents" in path.name and path.is_file())


def same_floats(ours: Any, theirs: list[float]) -> bool:
    """Equal as float64 arrays, NaN equal to NaN."""
    return np.array_equal(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64), equal_nan=True)


def assert_same_as_tensorboard(path: Path) -> DecodedEvents:
    """Every scalar, text and summary tag of ``path`` decodes to what TensorBoard reads: the same
    steps, wall times and values (kinds named by plugin and counted); returns the decoded events."""
    decoded = decode_file(path)
    reference = tensorboard_tags(path)
    assert decoded.corrupt == []
    for tag, events in reference.items():
        if events.plugin == HPARAMS:
            assert tag not in decoded.scalars and tag not in decoded.summaries, tag
            continue
        if events.plugin == SCALARS:
            steps, times, values = decoded.scalars[tag].ordered()
            assert same_floats(values, events.values), tag
        elif events.plugin == TEXT:
            steps, times, values = decoded.texts[tag].ordered()
            assert values == events.values, tag
        else:
            steps, times, values = decoded.summaries[tag].ordered()
            assert set(values) == {events.plugin}, tag
        assert steps.dtype == np.int64 and steps.tolist() == events.steps, tag
        assert times.tolist() == events.times, tag
    served = {tag for tag, events in reference.items() if events.plugin != HPARAMS}
    assert set(decoded.scalars) | set(decoded.texts) | set(decoded.summaries) == served
    return decoded
