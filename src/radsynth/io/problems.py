"""Turn library exceptions into the one-line problems that ``RadsynthError`` carries.

pydicom, nibabel and SimpleITK raise messages that span several lines (one per decoder
plugin, a C++ stack frame, ...). A user needs one line naming the file and what is wrong.
"""

from __future__ import annotations

import numpy as np

from radsynth.errors import NonFiniteVoxels, UnreadableImage

MAX_PROBLEM_CHARS = 400
# The most voxels (or pixels) a reader decodes: 2^28 is a 512 x 512 x 1024 CT, 1 GB as
# float32. A header claiming more is refused before anything is allocated.
MAX_VOXELS = 2**28
# DEFLATE (gzip, zlib, PNG) packs at most about 1032 bytes into one: a header claiming more
# than this many bytes per byte of file describes data the file cannot hold.
MAX_DEFLATE_RATIO = 1100


def one_line(exc: BaseException) -> str:
    """The exception's message folded onto one line (``type`` when it has no message)."""
    parts = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = parts[0] if parts else type(exc).__name__
    for part in parts[1:]:
        text += (" " if text.endswith(":") else "; ") + part
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


def check_finite(array: np.ndarray, path: object) -> None:
    """Refuse NaN or infinite voxels: they poison every statistic computed downstream."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    n_nan = int(np.count_nonzero(np.isnan(array)))
    n_inf = int(np.count_nonzero(np.isinf(array)))
    if n_nan or n_inf:
        found = [f"{n} {what} voxels" for n, what in ((n_nan, "NaN"), (n_inf, "infinite")) if n]
        raise NonFiniteVoxels(f"contains {' and '.join(found)}", path)


def check_claimed_size(
    shape: tuple[int, ...],
    itemsize: int,
    file_bytes: int | None,
    path: object,
    *,
    compressed: bool = True,
) -> None:
    """Refuse a header whose dimensions the file cannot back, before any pixel is allocated.

    A 66-byte ``.nii.gz`` may claim 32767 x 32767 x 2 voxels; decoding it first would take
    gigabytes before finding the file short. ``shape`` is what the header claims, ``itemsize``
    bytes per voxel; ``compressed``: the file may hold DEFLATE data (else raw pixels, which
    need the full size on disk); ``file_bytes`` None: the pixels are in another file (a
    detached header), so only the voxel limit applies.
    """
    voxels = 1
    for n in shape:
        if n < 0:
            raise UnreadableImage(f"header claims a negative dimension in {tuple(shape)}", path)
        voxels *= int(n)
    dims = " x ".join(str(int(n)) for n in shape)
    if voxels > MAX_VOXELS:
        raise UnreadableImage(f"header claims {dims} = {voxels:,} voxels; the limit is {MAX_VOXELS:,}", path)
    needed = voxels * itemsize
    if file_bytes is not None and needed > file_bytes * (MAX_DEFLATE_RATIO if compressed else 1):
        raise UnreadableImage(
            f"header claims {dims} voxels ({needed:,} bytes) but the file has only {file_bytes:,} bytes",
            path,
        )
