"""Where a frame's attributes live in a DICOM data set.

Enhanced (multi-frame) objects keep geometry and rescale in functional groups: per frame
in ``PerFrameFunctionalGroupsSequence``, or once for all frames in
``SharedFunctionalGroupsSequence``. Classic objects keep them at the top level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydicom import Dataset


def number_of_frames(ds: Dataset) -> int:
    """Number of Frames, 1 when absent or empty (single-frame objects)."""
    value = ds.get("NumberOfFrames")
    return int(value) if value not in (None, "") else 1


def is_enhanced(ds: Dataset) -> bool:
    """True for objects that describe their frames with functional groups."""
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def frame_item(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """The first item of functional-group ``sequence`` for frame ``index`` (per-frame first)."""
    groups = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and index < len(per_frame):
        groups.append(per_frame[index])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        items = group.get(sequence)
        if items:
            return items[0]
    return None


def frame_value(ds: Dataset, index: int, sequence: str, keyword: str, default: Any = None) -> Any:
    """``keyword`` for frame ``index``: from functional groups, else from the top level."""
    item = frame_item(ds, index, sequence) if is_enhanced(ds) else None
    if item is not None and item.get(keyword) not in (None, ""):
        return item.get(keyword)
    value = ds.get(keyword)
    return default if value in (None, "") else value
