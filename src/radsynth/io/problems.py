"""Turn library exceptions into the one-line problems that ``RadsynthError`` carries.

pydicom, nibabel and SimpleITK raise messages that span several lines (one per decoder
plugin, a C++ stack frame, ...). A user needs one line naming the file and what is wrong.
"""

from __future__ import annotations

import numpy as np

from radsynth.errors import NonFiniteVoxels

MAX_PROBLEM_CHARS = 400


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
