"""Text that is safe to store in a file's metadata and to show in a terminal."""

from __future__ import annotations

import re

# C0 and C1 controls and DEL (NUL, BEL, ESC, newline, ...): a NUL ends a C string early, ESC
# drives terminals and switches DICOM character sets, and DICOM's ST/LT text forbids most.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def printable(text: str) -> str:
    """``text`` with each run of control characters replaced by one space.

    >>> printable("chest CT\\x00\\x07\\x1b[31m, right lung")
    'chest CT [31m, right lung'
    """
    return _CONTROL.sub(" ", text)
