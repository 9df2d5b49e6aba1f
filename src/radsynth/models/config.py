"""Frozen dataclass configs that round-trip through JSON/YAML and reject unknown keys.

Every component config (``VAEConfig``, ``UNetConfig``, ``GANConfig``, ``NoiseConfig``)
inherits :class:`Config`: ``to_dict()`` gives JSON-ready values (tuples become lists) for
the card written beside the weights, and ``from_dict()`` refuses a key it does not know,
naming it, so a typo in a YAML recipe fails at load time instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Self

from radsynth.errors import InvalidInput


class Config:
    """Mixin for frozen dataclasses: ``to_dict`` / ``from_dict`` with strict keys."""

    def to_dict(self) -> dict[str, Any]:
        """Field values, tuples as lists, ready for ``json.dumps``."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from a mapping; unknown keys raise ``InvalidInput`` naming them."""
        if not isinstance(data, dict):
            raise InvalidInput(f"{cls.__name__} needs a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(
                f"{cls.__name__}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known keys are {', '.join(sorted(known))}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple | list) else value


def check(condition: bool, owner: str, name: str, problem: str) -> None:
    """Raise ``InvalidInput("<owner>.<name> <problem>")`` when ``condition`` is false."""
    if not condition:
        raise InvalidInput(f"{owner}.{name} {problem}")


def check_spatial_dims(owner: str, spatial_dims: int) -> None:
    check(spatial_dims in (2, 3), owner, "spatial_dims", f"must be 2 or 3, got {spatial_dims!r}")


def check_groups(owner: str, name: str, channels: tuple[int, ...], groups: int) -> None:
    """GroupNorm needs every channel count divisible by the number of groups."""
    bad = [c for c in channels if c % groups]
    check(not bad, owner, name, f"{channels} must all be divisible by norm_num_groups={groups} (not {bad})")
