"""Optional dependencies: which extra installs what, and imports that name the extra.

``pip install radsynth`` is enough to generate, translate, train, mark and verify. The
rest lives in extras (pyproject.toml): ``eval`` (metrics and the report), ``education``
(the handout's PDF), ``data`` (the demo corpus's MNI152 template) and ``serve`` (the API,
the web page and the PACS client). A module that needs one imports it through
:func:`optional_import`, inside the function that uses it, so a missing extra costs one
line naming what to install instead of a traceback (MONAI's ``optional_import`` habit).
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from radsynth.errors import MissingExtra

# Each extra's top-level modules, as imported (not as named on PyPI).
EXTRAS: dict[str, tuple[str, ...]] = {
    "eval": ("sklearn", "prdc", "pytorch_msssim", "matplotlib", "radiomics"),
    "education": ("matplotlib",),
    "data": ("nilearn",),
    "serve": ("fastapi", "uvicorn", "multipart", "dicomweb_client"),
}


def install_hint(extra: str) -> str:
    return f"pip install 'radsynth[{extra}]'"


def optional_import(module: str, extra: str) -> ModuleType:
    """``import module``, or :class:`MissingExtra` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != module.split(".")[0]:
            raise  # the module is there but something it needs is not: not ours to rename
        raise MissingExtra(
            f"{module} is not installed (the {extra!r} extra): {install_hint(extra)}"
        ) from None


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Fail before any work when ``what`` (e.g. "radsynth evaluate") lacks a module of ``extra``
    (all of them, or only ``modules``).

    Looks the modules up without importing them, so the check costs milliseconds.
    """
    missing = [m for m in modules or EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{what} needs {', '.join(missing)} (the {extra!r} extra): {install_hint(extra)}")
