"""Training recipes: YAML in, typed frozen dataclasses out, unknown keys refused by name.

A recipe (``configs/*.yaml``)::

    task: vae                 # a key of radsynth.train.tasks.TASKS
    name: vae-demo-64         # the model id written into the card (default: the file name)
    model: {...}              # the network settings, checked by the task (e.g. VAEConfig keys)
    options: {...}            # the task's own knobs (loss weights, warm-up, text encoder, ...)
    data: {manifest: "demo:64", split: train, image_size: 64, modalities: [CT, MR]}
    steps: 3000
    batch_size: 32            # GLOBAL batch: each of N torchrun processes takes batch_size / N
    lr: 2.0e-4
    ...
    out: runs/vae-demo-64

The same file trains on one process or on N under ``torchrun``: only the per-process
share of ``batch_size`` changes, so the optimisation (global batch, steps, lr) is the same.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput

FITS = ("resize", "pad")


@dataclass(frozen=True)
class CorpusSelection:
    """One more corpus to train on beside ``data.manifest``: its keys mean what the same
    keys of :class:`DataConfig` mean, applied to this manifest alone."""

    manifest: str
    split: str = "train"
    modalities: tuple[str, ...] = ()
    where: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.manifest), "data.also[].manifest", "must name a manifest or demo:<size>")


@dataclass(frozen=True)
class DataConfig:
    """Which images to train on.

    ``manifest`` is a manifest path (relative paths, like ``out``, are relative to the
    working folder) or ``demo:<size>`` for the demo corpus built by ``radsynth data demo``.
    ``split`` is a manifest split, or ``any`` for all of them. Images are
    resized to ``image_size`` pixels square when they differ. ``modalities`` (DICOM codes)
    keeps only those; empty keeps all. ``where`` keeps records whose field (or label) is
    one of the listed values, e.g. ``{anatomy: [brain, head], window: [null, bone]}``.
    ``also`` adds the selected records of more corpora (restoration learns from every
    contrast at hand: glioma MR, atlas MR and demo CT in one run; the card lists each
    record's source and licence). ``fit``: how an image of another size becomes
    ``image_size`` square: ``resize`` it, or ``pad`` a smaller one with background (centred;
    a larger one is still resized), so pixel-scale statistics (noise, sharpness) stay as
    scanned. ``augment`` adds small random shifts (no flips: captions state the side of a
    finding). ``workers`` are DataLoader processes.
    """

    manifest: str
    split: str = "train"
    image_size: int = 64
    modalities: tuple[str, ...] = ()
    where: dict[str, Any] = field(default_factory=dict)
    also: tuple[CorpusSelection, ...] = ()
    fit: str = "resize"
    augment: bool = False
    workers: int = 0

    def __post_init__(self) -> None:
        _require(bool(self.manifest), "data.manifest", "must name a manifest or demo:<size>")
        _require(self.fit in FITS, "data.fit", f"must be one of {', '.join(FITS)}, got {self.fit!r}")
        _require(self.image_size >= 4, "data.image_size", f"must be >= 4, got {self.image_size}")
        _require(self.workers >= 0, "data.workers", f"must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``batch_size`` is global (split over processes); ``ema_decay`` 0
    turns EMA off; ``clip_grad`` 0 turns clipping off; ``amp`` runs forward passes in
    bfloat16 autocast where the hardware makes that faster (``radsynth.models.precision``);
    ``warmup_steps`` ramps the learning rate linearly."""

    task: str
    data: DataConfig
    steps: int
    batch_size: int
    name: str = ""
    model: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    lr: float = 1.0e-4
    warmup_steps: int = 0
    ema_decay: float = 0.999
    clip_grad: float = 1.0
    amp: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    seed: int = 0
    out: str = "runs/train"

    def __post_init__(self) -> None:
        from radsynth.train.tasks import TASKS

        _require(self.task in TASKS, "task", f"{self.task!r} is not one of {', '.join(sorted(TASKS))}")
        _require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        _require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _require(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _require(0 <= self.ema_decay < 1, "ema_decay", f"must be in [0, 1), got {self.ema_decay}")
        _require(self.clip_grad >= 0, "clip_grad", f"must be >= 0, got {self.clip_grad}")
        for name in ("checkpoint_every", "log_every", "keep_checkpoints"):
            _require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        _require(bool(self.out), "out", "must name an output folder")

    @property
    def model_id(self) -> str:
        return self.name or f"{self.task}-model"

    def per_process_batch(self, world_size: int) -> int:
        """``batch_size / world_size``; refuses a split that would change the global batch."""
        if self.batch_size % world_size:
            raise InvalidInput(
                f"batch_size {self.batch_size} is not divisible by the {world_size} processes; "
                "it is the global batch, split evenly over processes"
            )
        return self.batch_size // world_size

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with some top-level fields replaced (``None`` values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_config(path: str | Path) -> TrainConfig:
    """Read a YAML recipe; the run name defaults to the file name without ``.yaml``."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput("config file not found", path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"cannot read config ({err})", path) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"invalid YAML{where}", path) from None
    if not isinstance(raw, dict):
        raise InvalidInput("config must be a YAML mapping", path)
    raw.setdefault("name", path.stem)
    try:
        return config_from_dict(raw)
    except InvalidInput as err:
        raise InvalidInput(err.problem, path) from None


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from plain values, checking keys and types."""
    return from_dict(TrainConfig, raw, "")


def from_dict(cls: type, raw: Any, where: str) -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, naming unknown or missing keys."""
    label = where.rstrip(".") or "config"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{label} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(
            f"unknown key(s) {', '.join(where + k for k in unknown)}; known: {', '.join(sorted(known))}"
        )
    missing = [
        name
        for name, f in known.items()
        if name not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise InvalidInput(f"missing key(s) {', '.join(where + k for k in missing)}")
    values = {name: _coerce(hints[name], value, where + name) for name, value in raw.items()}
    return cls(**values)


def _coerce(kind: Any, value: Any, name: str) -> Any:
    """Check ``value`` against a field type; YAML's ``1e-4`` (a string) becomes a float."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return from_dict(kind, value, name + ".")
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _coerce(options[0], value, name)
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be an integer, got {value!r}")
        return value
    if kind is float:
        try:
            return float(value) if not isinstance(value, bool) else _fail(name, "a number", value)
        except (TypeError, ValueError):
            _fail(name, "a number", value)
    if kind is str:
        return value if isinstance(value, str) else _fail(name, "a string", value)
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            _fail(name, "a list", value)
        item = typing.get_args(kind)[0]
        return tuple(_coerce(item, v, f"{name}[{i}]") for i, v in enumerate(items))
    if origin is dict:
        return dict(value) if isinstance(value, dict) else _fail(name, "a mapping", value)
    return value


def _fail(name: str, what: str, value: Any) -> Any:
    raise InvalidInput(f"{name} must be {what}, got {value!r}")


def _require(condition: bool, name: str, problem: str) -> None:
    if not condition:
        raise InvalidInput(f"{name} {problem}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
