"""A dataset plan: what ``radsynth generate --plan PLAN`` makes, image by image.

Three ways to write one, each read into the same list of :class:`ImageSpec` (image i, its
prompt, seed, labels and sampler settings):

- JSONL, one item a line: ``{"prompt": "...", "n": 12}``, optionally ``seed``, ``model``
  (a shipped family or checkpoint folder), ``steps``, ``guidance`` and ``labels`` (copied
  into the manifest as they are);
- YAML with the same items under ``items:``, and the plan's settings beside them
  (``model``, ``steps``, ``guidance``, ``size``, ``format``, ``seed``, ``total``);
- YAML with ``labels:`` proportions (or counts) and a ``total``, and optionally an ``age:``
  distribution: each image's labels are drawn so every label's count is exact, and its
  prompt is the chest X-ray corpus' caption of those labels (``radsynth.data.cxr.caption``:
  the words the chest X-ray family learnt).

Image i uses seed ``seed + i`` (the plan's ``seed``, default the CLI's ``--seed``); an item
with its own ``seed`` numbers its images from there. Nothing depends on how many processes
later draw the images, so the plan's hash (:attr:`Plan.sha256`) names the dataset: a folder
holding one plan refuses another.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.data.cxr import caption
from radsynth.data.cxr_sources import CxrItem, age_group
from radsynth.errors import InvalidInput
from radsynth.provenance.marking import FORMATS
from radsynth.sampling.bounds import LIBRARY, Bounds

# A plan above LIBRARY.max_images (one request's bound) runs only with --yes; none above this.
MAX_PLAN_IMAGES = 1_000_000
ITEM_KEYS = ("prompt", "n", "seed", "model", "steps", "guidance", "labels")
SETTING_KEYS = ("model", "steps", "guidance", "size", "format", "seed", "total")
# What the label form may ask for: the chest X-ray corpus' labels (radsynth.data.cxr),
# in the words its captions use.
LABEL_VALUES = {
    "finding": ("normal", "pneumonia"),
    "sex": ("female", "male"),
    "view": ("PA", "AP"),
    "age_group": ("child", "adult", "older adult"),
}
AGE_DISTRIBUTIONS = ("uniform", "normal")
PROPORTION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Settings:
    """How a run draws its images, the same for every image of the plan unless an item
    says otherwise (``model``, ``steps``, ``guidance``)."""

    model: str
    steps: int | None = None
    guidance: float | None = None
    size: int | None = None
    format: str = "png"
    seed: int = 0


@dataclass(frozen=True)
class ImageSpec:
    """Image ``index`` of a plan: everything that decides its pixels and its manifest line."""

    index: int
    prompt: str
    seed: int
    model: str
    steps: int | None
    guidance: float | None
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def batch_key(self) -> tuple[str, int | None, float | None]:
        """Images with the same key can share a network batch (prompts may differ)."""
        return (self.model, self.steps, self.guidance)


@dataclass(frozen=True)
class Plan:
    """A read plan: its source document, settings and every image."""

    source: str
    document: dict[str, Any]
    settings: Settings
    images: tuple[ImageSpec, ...]

    @property
    def total(self) -> int:
        return len(self.images)

    @property
    def models(self) -> list[str]:
        return sorted({spec.model for spec in self.images})

    @property
    def sha256(self) -> str:
        """Hash of what decides the dataset (settings and every image), not of the file's
        spelling: the same plan rewritten is the same dataset."""
        body = {"settings": asdict(self.settings), "images": [asdict(s) for s in self.images]}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def label_counts(self) -> dict[str, dict[str, int]]:
        """Images per value of each label (list-valued labels counted as their text)."""
        counts: dict[str, Counter] = {}
        for spec in self.images:
            for key, value in spec.labels.items():
                counts.setdefault(key, Counter())[str(value)] += 1
        return {k: dict(sorted(c.items())) for k, c in sorted(counts.items())}


def read_plan(path: str | Path, defaults: Settings, yes: bool = False) -> Plan:
    """Read and expand ``path`` (``.jsonl``, ``.yaml``/``.yml``); every problem is one
    ``InvalidInput`` naming the file and what is wrong, before any model loads. ``defaults``
    fill what the plan leaves out (the CLI's options); ``yes`` allows more than
    ``LIBRARY.max_images`` images."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput("plan not found", path) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"cannot read the plan ({err})", path) from None
    try:
        if path.suffix == ".jsonl":
            document: Any = {"items": _jsonl_items(text)}
        elif path.suffix in (".yaml", ".yml"):
            document = _yaml(text)
        else:
            raise ValueError(f"a plan is .jsonl or .yaml, not {path.suffix or 'a file without suffix'}")
    except ValueError as err:
        raise InvalidInput(str(err), path) from None
    return plan_from_document(document, defaults, path.name, yes=yes, where=path)


def plan_from_document(
    document: Any,
    defaults: Settings,
    source: str = "request",
    yes: bool | None = False,
    bounds: Bounds = LIBRARY,
    where: Path | None = None,
) -> Plan:
    """A plan from its YAML form already parsed (the service takes it as JSON). ``bounds``:
    the front end's limits (prompt length, images, steps, guidance), with ``n`` counted as
    the plan's total; ``yes`` None: no confirmation can lift ``bounds.max_images``."""
    try:
        document = _checked(document)
        settings = _settings(document, defaults, bounds)
        images = _expand(document, settings, yes, bounds)
    except ValueError as err:
        raise InvalidInput(str(err) if where else f"plan: {err}", where) from None
    return Plan(source, _untagged(document), settings, images)


def _untagged(document: dict[str, Any]) -> dict[str, Any]:
    """The document as written (without the items' ``_where`` tags), for the card."""
    if "items" not in document:
        return document
    items = [{k: v for k, v in item.items() if k != "_where"} for item in document["items"]]
    return {**document, "items": items}


def _jsonl_items(text: str) -> list[dict[str, Any]]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"line {number}: bad JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(item, dict):
            raise ValueError(f'line {number}: expected an object like {{"prompt": "...", "n": 12}}')
        items.append({**item, "_where": f"line {number}"})
    if not items:
        raise ValueError("the plan has no items")
    return items


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"bad YAML ({str(err).splitlines()[0]})") from None


def _checked(document: Any) -> dict[str, Any]:
    """The document's form and keys checked, each item tagged with where it stands."""
    if not isinstance(document, dict):
        raise ValueError("expected a mapping with items: or labels: and total:")
    forms = [k for k in ("items", "labels") if k in document]
    if len(forms) != 1:
        raise ValueError("a plan has either items: (prompt and n each) or labels: with a total:, one of them")
    unknown = sorted(set(document) - {*SETTING_KEYS, "items", "labels", "age"})
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}")
    if "items" in document:
        items = document["items"]
        if not isinstance(items, list) or not items:
            raise ValueError("items: must be a non-empty list")
        document = {
            **document,
            "items": [
                {"_where": f"item {k + 1}", **item} if isinstance(item, dict) else item
                for k, item in enumerate(items)
            ],
        }
    return document


def _check_model(model: str, where: str) -> None:
    """A plan's ``model`` is a weights family with a generator (``cxr-128``) or a checkpoint
    folder, not a generator kind (``ldm``: that is ``--model``) nor a family of translators
    only (``brain-real``): refused here, naming the line, before any image of an earlier
    line is drawn."""
    from radsynth.generate.models import list_models
    from radsynth.models.registry import CARD

    families = {m.name for m in list_models()}
    if model in families or (Path(model) / CARD).is_file():
        return
    known = ", ".join(sorted(families))
    raise ValueError(f"{where}unknown model {model!r}: a shipped family ({known}) or a checkpoint folder")


def _settings(document: dict[str, Any], defaults: Settings, bounds: Bounds) -> Settings:
    given = {k: document[k] for k in SETTING_KEYS if k in document and k != "total"}
    settings = replace(defaults, **given)
    if not isinstance(settings.model, str) or not settings.model:
        raise ValueError(f"model must be a shipped family or a checkpoint folder, got {settings.model!r}")
    _check_model(settings.model, "")
    if settings.format not in FORMATS:
        raise ValueError(f"unknown format {settings.format!r}; choose one of {', '.join(FORMATS)}")
    if settings.size is not None and not _whole(settings.size, 1):
        raise ValueError(f"size must be a positive integer, got {settings.size!r}")
    if not _whole(settings.seed, 0):
        raise ValueError(f"seed must be a non-negative integer, got {settings.seed!r}")
    _check_sampling(settings.steps, settings.guidance, "", bounds)
    return settings


def _whole(value: Any, lowest: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lowest


def _check_sampling(steps: Any, guidance: Any, where: str, bounds: Bounds) -> None:
    if guidance is not None and (isinstance(guidance, bool) or not isinstance(guidance, int | float)):
        raise ValueError(f"{where}guidance must be a number, got {guidance!r}")
    try:
        bounds.check_sampling(steps, guidance)
    except InvalidInput as err:
        raise ValueError(where + str(err)) from None


def _check_total(total: int, yes: bool | None, bounds: Bounds) -> None:
    if total > MAX_PLAN_IMAGES:
        raise ValueError(f"the plan asks for {total:,} images; at most {MAX_PLAN_IMAGES:,}")
    if yes is None and total > bounds.max_images:
        raise ValueError(f"the plan asks for {total:,} images; at most {bounds.max_images:,} here")
    if total > bounds.max_images and not yes:
        raise ValueError(
            f"the plan asks for {total:,} images, over the {bounds.max_images:,} a run makes "
            "without --yes (add --yes if you mean it)"
        )


def _expand(
    document: dict[str, Any], settings: Settings, yes: bool | None, bounds: Bounds
) -> tuple[ImageSpec, ...]:
    if "labels" in document:
        return _from_labels(document, settings, yes, bounds)
    items = [_item(it, settings, bounds) for it in document["items"]]
    total = sum(n for n, _ in items)
    stated = document.get("total")
    if stated is not None and stated != total:
        raise ValueError(f"the items' n add up to {total:,}, not total {stated!r}")
    _check_total(total, yes, bounds)
    images: list[ImageSpec] = []
    for n, template in items:
        first = len(images)
        own_seed = template.seed
        for j in range(n):
            seed = settings.seed + first + j if own_seed < 0 else own_seed + j
            images.append(replace(template, index=first + j, seed=seed))
    return tuple(images)


def _item(item: Any, settings: Settings, bounds: Bounds) -> tuple[int, ImageSpec]:
    """(n, the item's image with index 0 and seed -1 when the item states none)."""
    if not isinstance(item, dict):
        raise ValueError(f"every item must be a mapping with prompt and n, got {item!r}")
    item = dict(item)
    where = f"{item.pop('_where')}: "
    unknown = sorted(set(item) - set(ITEM_KEYS))
    if unknown:
        raise ValueError(f"{where}unknown field(s) {', '.join(unknown)} (known: {', '.join(ITEM_KEYS)})")
    n = item.get("n")
    if not _whole(n, 1):
        raise ValueError(f"{where}n must be a positive integer, got {n!r}")
    try:
        prompt = bounds.check(item.get("prompt"), 1)  # n: the plan's total is bounded
    except InvalidInput as err:
        raise ValueError(where + str(err)) from None
    steps, guidance = item.get("steps", settings.steps), item.get("guidance", settings.guidance)
    _check_sampling(steps, guidance, where, bounds)
    seed = item.get("seed", -1)
    if "seed" in item and not _whole(seed, 0):
        raise ValueError(f"{where}seed must be a non-negative integer, got {seed!r}")
    model = item.get("model", settings.model)
    if not isinstance(model, str) or not model:
        raise ValueError(f"{where}model must be a shipped family or a checkpoint folder, got {model!r}")
    _check_model(model, where)
    labels = item.get("labels", {})
    if not isinstance(labels, dict):
        raise ValueError(f"{where}labels must be a mapping of name to value, got {labels!r}")
    return n, ImageSpec(0, prompt, seed, model, steps, guidance, dict(labels))


def _from_labels(
    document: dict[str, Any], settings: Settings, yes: bool | None, bounds: Bounds
) -> tuple[ImageSpec, ...]:
    """Labels with exact counts per value, shuffled independently per label (seeded), and
    ages drawn per image: the prompt of each is the corpus caption of its labels."""
    total = document.get("total")
    if not _whole(total, 1):
        raise ValueError(f"the labels form needs total: a positive integer, got {total!r}")
    _check_total(total, yes, bounds)
    labels = document["labels"]
    if not isinstance(labels, dict) or not labels:
        raise ValueError("labels: must map a label to its values' proportions, e.g. finding: {normal: 0.4}")
    if "age_group" in labels and document.get("age") is not None:
        raise ValueError("give labels.age_group or age:, not both (an age sets its group)")
    rng = np.random.default_rng(settings.seed)
    columns: dict[str, list[str]] = {}
    for key, shares in labels.items():
        values = _label_counts(key, shares, total)
        column = [v for v, count in values.items() for _ in range(count)]
        columns[key] = [column[k] for k in rng.permutation(total)]
    ages = _ages(document.get("age"), total, rng)
    images = []
    for i in range(total):
        chosen = {key: column[i] for key, column in columns.items()}
        if ages is not None:
            chosen["age"] = int(ages[i])
            chosen.setdefault("age_group", age_group(int(ages[i])))
        prompt = caption(CxrItem("plan", Path(), "", "", **chosen))
        images.append(
            ImageSpec(i, prompt, settings.seed + i, settings.model, settings.steps, settings.guidance, chosen)
        )
    return tuple(images)


def _label_counts(key: str, shares: Any, total: int) -> dict[str, int]:
    """Each value's count: proportions (summing to 1) rounded by largest remainder, or
    counts (whole numbers summing to ``total``)."""
    if key not in LABEL_VALUES:
        raise ValueError(f"unknown label {key!r}; the label form knows {', '.join(LABEL_VALUES)} (and age:)")
    if not isinstance(shares, dict) or not shares:
        raise ValueError(f"labels.{key} must map each value to a proportion or a count")
    for value, share in shares.items():
        if value not in LABEL_VALUES[key]:
            raise ValueError(
                f"labels.{key}: unknown value {value!r}; the chest X-ray captions know "
                f"{', '.join(LABEL_VALUES[key])}"
            )
        if isinstance(share, bool) or not isinstance(share, int | float) or share < 0:
            raise ValueError(f"labels.{key}.{value}: expected a proportion or a count, got {share!r}")
    if all(isinstance(s, int) for s in shares.values()) and sum(shares.values()) > 1:
        if sum(shares.values()) != total:
            raise ValueError(f"labels.{key}: counts add up to {sum(shares.values()):,}, not total {total:,}")
        return dict(shares)
    if abs(sum(shares.values()) - 1) > PROPORTION_TOLERANCE:
        raise ValueError(f"labels.{key}: proportions add up to {sum(shares.values()):g}, not 1")
    exact = {v: s * total for v, s in shares.items()}
    counts = {v: int(x) for v, x in exact.items()}
    by_remainder = sorted(exact, key=lambda v: (counts[v] - exact[v], list(exact).index(v)))
    for value in by_remainder[: total - sum(counts.values())]:
        counts[value] += 1
    return counts


def _ages(spec: Any, total: int, rng: np.random.Generator) -> np.ndarray | None:
    """Whole years: ``{distribution: uniform, min, max}`` or ``{distribution: normal, mean,
    sd, min, max}`` (clipped to [min, max]; the defaults 18 and 89: above 89 a caption
    says only "over 89 years")."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("distribution") not in AGE_DISTRIBUTIONS:
        raise ValueError(f"age: needs distribution: one of {', '.join(AGE_DISTRIBUTIONS)}")
    known = {"distribution", "min", "max"} | ({"mean", "sd"} if spec["distribution"] == "normal" else set())
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"age: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    low, high = spec.get("min", 18), spec.get("max", 89)
    if not (_whole(low, 0) and _whole(high, 0) and low <= high):
        raise ValueError(f"age: min and max must be whole years with min <= max, got {low!r}, {high!r}")
    if spec["distribution"] == "uniform":
        return rng.integers(low, high + 1, total)
    mean, sd = spec.get("mean"), spec.get("sd")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (mean, sd)) or sd <= 0:
        raise ValueError(f"age: a normal distribution needs mean and sd > 0, got {mean!r}, {sd!r}")
    return np.clip(np.round(rng.normal(mean, sd, total)), low, high).astype(int)
