"""radsynth: synthetic medical images, generated, translated, evaluated and marked.

The package is layered (lowest first): ``io``, ``data``, ``text``, ``models``,
``sampling``, ``train``, then the workflows, then ``serve`` and ``cli``. See DESIGN.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("radsynth")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# The shipped model family used when none is named. Here, not in radsynth.models.registry,
# so the CLI's option defaults and the service's request bodies name it without importing torch.
DEFAULT_FAMILY = "demo-ct-mr-64"

__all__ = ["DEFAULT_FAMILY", "__version__", "load_pipeline"]


def __getattr__(name: str):
    """``radsynth.load_pipeline`` without importing torch on ``import radsynth``."""
    if name == "load_pipeline":
        from radsynth.generate import load_pipeline

        return load_pipeline
    raise AttributeError(f"module 'radsynth' has no attribute {name!r}")
