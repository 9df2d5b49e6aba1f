"""The typed checkpoint card: what ``card.json`` says a set of weights is.

``card.json`` stays the JSON that ``radsynth.models.checkpoint.save_checkpoint`` writes;
:class:`Card` is how every consumer reads it, so a malformed card fails once, at load,
naming the file (``CheckpointMismatch``), instead of as a ``KeyError`` deep inside
generation. ``config`` keeps each component's section as the plain dict its own
``XConfig.from_dict`` parses (the card does not know every network); ``task_info`` keeps
the task's own facts (sampling defaults, vocabulary, translation settings). Keys outside
the schema (a hand-written ``description``) are kept in ``extra`` and written back as
they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radsynth.errors import CheckpointMismatch

_SCHEMA = (
    "radsynth_version",
    "model_id",
    "task",
    "config",
    "task_info",
    "data",
    "steps",
    "wall_time_s",
    "metrics",
    "training",
    "created",
)


@dataclass(frozen=True)
class DataSource:
    """One source a model learnt from, with its licence and how many images it gave."""

    source: str
    licence: str
    count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "licence": self.licence} | (
            {} if self.count is None else {"count": self.count}
        )


@dataclass(frozen=True)
class TrainingSet:
    """``manifest`` (a path or ``demo:<size>``), the ``split`` used, and the ``sources``."""

    manifest: str | None = None
    split: str | None = None
    sources: tuple[DataSource, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.manifest is not None:
            out["manifest"] = self.manifest
        if self.split is not None:
            out["split"] = self.split
        out["sources"] = [s.to_dict() for s in self.sources]
        return out


@dataclass(frozen=True)
class Card:
    """A checkpoint's card. ``task`` names the family of networks (``ldm``, ``gan``, ``vae``,
    ``classifier``, ``detector``, ``translate``, ...); ``config`` maps a component name to
    its settings; ``steps`` and ``wall_time_s`` (s) are the training's; ``version`` is the
    radsynth that wrote it."""

    task: str
    model_id: str = ""
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task_info: Mapping[str, Any] = field(default_factory=dict)
    data: TrainingSet | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    steps: int | None = None
    wall_time_s: float | None = None
    version: str | None = None
    created: str | None = None
    training: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, value: Any, where: str | Path | None = None) -> Card:
        """The card of a parsed ``card.json``; ``where`` (the folder) names it in errors."""

        def need(ok: bool, problem: str) -> None:
            if not ok:
                raise CheckpointMismatch(f"card {problem}", where)

        need(isinstance(value, Mapping), "is not a JSON object")
        task, model_id = value.get("task"), value.get("model_id", "")
        need(isinstance(task, str) and bool(task), f"task {task!r} is not a name")
        need(isinstance(model_id, str), f"model_id {model_id!r} is not a string")
        config = value.get("config", {})
        need(isinstance(config, Mapping), "config is not a mapping")
        bad = sorted(name for name, section in config.items() if not isinstance(section, Mapping))
        need(not bad, f"config section {bad[0]!r} is not a mapping" if bad else "")
        for name in ("task_info", "metrics", "training"):
            need(isinstance(value.get(name, {}), Mapping), f"{name} is not a mapping")
        steps, wall = value.get("steps"), value.get("wall_time_s")
        need(steps is None or (isinstance(steps, int) and not isinstance(steps, bool)), f"steps {steps!r}")
        need(wall is None or isinstance(wall, int | float), f"wall_time_s {wall!r} is not a number")
        card = cls(
            task=task,
            model_id=model_id,
            config=dict(config),
            task_info=dict(value.get("task_info", {})),
            data=_training_set(value["data"], need) if "data" in value else None,
            metrics=dict(value.get("metrics", {})),
            steps=steps,
            wall_time_s=wall,
            version=value.get("radsynth_version"),
            created=value.get("created"),
            training=dict(value.get("training", {})),
            extra={k: v for k, v in value.items() if k not in _SCHEMA},
        )
        try:  # a malformed task_info.image fails here, at load, naming the file
            card.image_size, card.spacing  # noqa: B018
        except CheckpointMismatch as err:
            raise CheckpointMismatch(err.problem, where) from None
        return card

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``card.json`` holds (what :meth:`from_dict` read, key for key)."""
        out: dict[str, Any] = {} if self.version is None else {"radsynth_version": self.version}
        out |= {"model_id": self.model_id, "task": self.task, "config": dict(self.config)}
        if self.task_info:
            out["task_info"] = dict(self.task_info)
        if self.data is not None:
            out["data"] = self.data.to_dict()
        out |= {k: v for k, v in (("steps", self.steps), ("wall_time_s", self.wall_time_s)) if v is not None}
        out |= {k: dict(v) for k, v in (("metrics", self.metrics), ("training", self.training)) if v}
        if self.created is not None:
            out["created"] = self.created
        return out | dict(self.extra)

    def section(self, name: str, default: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The settings of component ``name`` (``vae``, ``unet``, ...), for its ``from_dict``."""
        if name in self.config:
            return dict(self.config[name])
        if default is not None:
            return dict(default)
        raise CheckpointMismatch(f"card config has no {name!r} section")

    @property
    def image_size(self) -> tuple[int, ...] | None:
        """Pixels of the training images, in array order (``task_info.image.size``)."""
        size = self._image().get("size")
        if size is None:
            return None
        if not isinstance(size, list | tuple) or not all(isinstance(s, int) and s > 0 for s in size):
            raise CheckpointMismatch(f"card task_info.image.size {size!r} is not a list of pixel counts")
        return tuple(size)

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """Pixel spacing of the training images, mm, in ``Image.spacing`` order (x, y[, z])."""
        spacing = self._image().get("spacing")
        if spacing is None:
            return None
        if not isinstance(spacing, list | tuple) or not all(isinstance(s, int | float) for s in spacing):
            raise CheckpointMismatch(f"card task_info.image.spacing {spacing!r} is not a list of mm")
        return tuple(float(s) for s in spacing)

    @property
    def modalities(self) -> tuple[str, ...]:
        """DICOM modalities the training captions named (``task_info.vocabulary.modality``;
        empty without a vocabulary): what a generator draws, e.g. ``("DX",)`` for X-rays."""
        vocabulary = self.task_info.get("vocabulary") or {}
        return tuple(vocabulary.get("modality") or ()) if isinstance(vocabulary, Mapping) else ()

    def _image(self) -> Mapping[str, Any]:
        image = self.task_info.get("image") or {}
        if not isinstance(image, Mapping):
            raise CheckpointMismatch("card task_info.image is not a mapping")
        return image


def _training_set(data: Any, need) -> TrainingSet:
    need(isinstance(data, Mapping), "data is not a mapping")
    sources = data.get("sources", [])
    need(isinstance(sources, list), "data.sources is not a list")
    for s in sources:
        need(
            isinstance(s, Mapping) and isinstance(s.get("source"), str) and isinstance(s.get("licence"), str),
            f"data source {s!r} lacks a source or a licence",
        )
    return TrainingSet(
        manifest=data.get("manifest"),
        split=data.get("split"),
        sources=tuple(DataSource(s["source"], s["licence"], s.get("count")) for s in sources),
    )
