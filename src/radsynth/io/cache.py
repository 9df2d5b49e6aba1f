"""Where radsynth keeps what it builds and can build again (the demo corpus, the inference
traces of the shipped networks): per user, outside the package, so an installed package
stays read-only and the repository holds only what cannot be rebuilt."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$RADSYNTH_CACHE``, else ``$XDG_CACHE_HOME/radsynth``, else ``~/.cache/radsynth``."""
    if os.environ.get("RADSYNTH_CACHE"):
        return Path(os.environ["RADSYNTH_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "radsynth"
