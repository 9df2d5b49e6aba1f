"""radsynth: synthetic medical images, generated, translated, evaluated and marked.

The package is layered (lowest first): ``io``, ``data``, ``text``, ``models``,
``sampling``, ``train``, then the workflows, then ``serve`` and ``cli``. See DESIGN.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("radsynth")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
