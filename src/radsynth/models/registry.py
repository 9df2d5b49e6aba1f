"""The one registry of checkpoints: where the shipped weights live, how each card's task
is built, and the one loader every consumer uses (as diffusers' ``from_pretrained``).

``load_pretrained(folder)`` reads ``card.json`` into a :class:`~radsynth.models.card.Card`,
builds the networks its task names from the card's config sections, and loads the
weights strictly (every module, key and shape, or ``CheckpointMismatch``). A new model
family is one entry in ``BUILDERS``; a new shipped family is one folder under
``SHIPPED_WEIGHTS`` (``<family>/<kind>/``, where ``kind`` is the folder's name:
``ldm``, ``encoder``, ``translate-sr``, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from radsynth import DEFAULT_FAMILY
from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.models.card import Card
from radsynth.models.checkpoint import CARD, WEIGHTS, load_card, load_checkpoint, load_into
from radsynth.models.classifier import AttributeClassifier, ClassifierConfig
from radsynth.models.export import (
    INFERENCE_NETWORKS,
    export_networks,
    fresh_manifest,
    load_exported,
    trace_folder,
    trace_keys,
    trace_precisions,
)
from radsynth.models.gan import GANConfig, build_gan
from radsynth.models.translator import Translator, TranslatorConfig
from radsynth.models.unet import UNetConfig, build_unet
from radsynth.models.vae import VAEConfig, build_vae
from radsynth.text.registry import build_text_encoder

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def _vae(card: Card) -> dict[str, nn.Module]:
    return {"vae": build_vae(VAEConfig.from_dict(card.section("vae")))}


def _learned_text(card: Card) -> dict[str, nn.Module]:
    """A learned text encoder is trained with the generator and shipped in its weights; a
    frozen one (MiniLM) is rebuilt from its package, so it holds no weights here."""
    config = card.section("text_encoder")
    return {"text_encoder": build_text_encoder(config)} if config.get("kind") == "learned" else {}


def _ldm(card: Card) -> dict[str, nn.Module]:
    unet = build_unet(UNetConfig.from_dict(card.section("unet")))
    return {**_vae(card), "unet": unet, **_learned_text(card)}


def _gan(card: Card) -> dict[str, nn.Module]:
    generator, _ = build_gan(GANConfig.from_dict(card.section("gan")))  # the discriminator is not shipped
    return {"generator": generator, **_learned_text(card)}


def _classifier(name: str) -> Callable[[Card], dict[str, nn.Module]]:
    return lambda card: {name: AttributeClassifier(ClassifierConfig.from_dict(card.section(name)))}


BUILDERS: dict[str, Callable[[Card], dict[str, nn.Module]]] = {
    "ldm": _ldm,
    "gan": _gan,
    "vae": _vae,
    "classifier": _classifier("classifier"),
    "detector": _classifier("detector"),
    "translate": lambda card: {
        "translator": Translator(TranslatorConfig.from_dict(card.section("translator")))
    },
}


@dataclass(frozen=True)
class Pretrained:
    """A loaded checkpoint: its card and its networks (weights in, eval mode, on the CPU)."""

    folder: Path
    card: Card
    modules: dict[str, nn.Module]


def read_card(folder: str | Path) -> Card:
    """The typed card of a checkpoint folder (cheap: no weights are read)."""
    return Card.from_dict(load_card(folder), Path(folder) / CARD)


def build_modules(card: Card, where: str | Path | None = None) -> dict[str, nn.Module]:
    """Freshly initialised networks for ``card``, named as its weights file names them."""
    if card.task not in BUILDERS:
        known = ", ".join(sorted(BUILDERS))
        raise CheckpointMismatch(f"card task {card.task!r} is not a model radsynth builds ({known})", where)
    try:
        return BUILDERS[card.task](card)
    except InvalidInput as err:  # a config section that does not parse is a bad checkpoint
        raise CheckpointMismatch(err.problem, where) from None


def load_pretrained(
    folder: str | Path, task: str | None = None, *, exported: bool = False, precision: str = "fp32"
) -> Pretrained:
    """Read, build and load the checkpoint in ``folder``; ``task``: refuse any other task.

    ``exported``: the networks inference runs, from the checkpoint's TorchScript traces in
    the user's cache where it has up-to-date ones in ``precision`` (``radsynth.models.export``:
    no MONAI import; on the CPU, fp32 or bf16 autocast), else built and loaded as usual."""
    folder = Path(folder)
    if exported:
        card = read_card(folder)
        traces = load_exported(folder, card, precision)
        if traces is not None:
            _check_task(card, task, folder)
            return Pretrained(folder, card, traces)
    state, raw = load_checkpoint(folder)
    card = Card.from_dict(raw, folder / CARD)
    _check_task(card, task, folder)
    modules = build_modules(card, folder / CARD)
    load_into(modules, state, folder=folder)
    return Pretrained(folder, card, {name: module.eval() for name, module in modules.items()})


def _check_task(card: Card, task: str | None, folder: Path) -> None:
    if task is not None and card.task != task:
        raise InvalidInput(f"not a {task} checkpoint (its card says task {card.task!r})", folder)


def load_distilled_unet(folder: str | Path, card: Card) -> nn.Module:
    """The guidance-distilled UNet shipped beside an LDM checkpoint (its card's
    ``task_info.distilled_unet.file``, weights stored in float16 to halve the download; run
    in float32)."""
    from safetensors.torch import load_file

    path = Path(folder) / str((card.task_info.get("distilled_unet") or {}).get("file", ""))
    if not path.is_file():
        raise CheckpointMismatch(f"card names a distilled UNet {path.name!r} that is not there", folder)
    net = build_unet(UNetConfig.from_dict(card.section("unet")))
    try:
        net.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    except (RuntimeError, OSError) as err:
        raise CheckpointMismatch(f"distilled UNet does not fit the card's UNet ({err})"[:300], path) from None
    return net.eval()


def inference_networks(card: Card) -> tuple[str, ...]:
    """The networks of ``card``'s checkpoint that inference runs, so the ones traced (its
    distilled UNet included, where shipped); empty for a task inference never loads."""
    distilled = ("distilled",) if card.task_info.get("distilled_unet") else ()
    return (*INFERENCE_NETWORKS[card.task], *distilled) if card.task in INFERENCE_NETWORKS else ()


# Tasks whose inference runs in the pipeline's precision (bf16 under ``auto`` where the CPU
# has it); the classifier, detector and translators always run float32 on the CPU.
PRECISION_TASKS = ("ldm", "gan", "vae")


def traced_precisions(card: Card) -> tuple[str, ...]:
    """The precisions ``card``'s networks are traced in on this machine."""
    return trace_precisions() if card.task in PRECISION_TASKS else ("fp32",)


def export_inference(folder: str | Path, precisions: Sequence[str] | None = None) -> Path:
    """Trace the networks inference runs from the checkpoint in ``folder`` into its folder
    in the user's cache (``radsynth.models.export.trace_folder``); returns that folder. Run
    again whenever the weights change (``export_shipped`` does it for every shipped one)."""
    folder = Path(folder)
    pretrained = load_pretrained(folder)
    card = pretrained.card
    names = inference_networks(card)
    if not names or "text_encoder" in pretrained.modules:
        raise InvalidInput(f"no inference export for a {card.task!r} checkpoint with these networks", folder)
    networks = {name: (pretrained.modules[name], folder / WEIGHTS) for name in INFERENCE_NETWORKS[card.task]}
    if "distilled" in names:
        file = str(card.task_info["distilled_unet"]["file"])
        networks["distilled"] = (load_distilled_unet(folder, card), folder / file)
    return export_networks(folder, card, networks, precisions or traced_precisions(card))


@dataclass(frozen=True)
class ShippedModel:
    """One shipped checkpoint: ``name`` (the family, e.g. ``DEFAULT_FAMILY``) and ``kind``
    (the folder: ``ldm``, ``classifier``, ``translate-sr``, ...)."""

    name: str
    kind: str
    folder: Path

    def card(self) -> Card:
        return read_card(self.folder)


def shipped_models() -> list[ShippedModel]:
    """Every shipped checkpoint, by family then kind."""
    return [
        ShippedModel(family.name, kind.name, kind)
        for family in sorted(p for p in SHIPPED_WEIGHTS.glob("*") if p.is_dir())
        for kind in sorted(family.iterdir())
        if (kind / CARD).is_file()
    ]


def shipped(kind: str, family: str = DEFAULT_FAMILY) -> Path:
    """The folder of a shipped checkpoint (e.g. ``shipped("classifier")``)."""
    return checkpoint_folder(family, kind)


def checkpoint_folder(name: str | Path, kind: str) -> Path:
    """The checkpoint folder for a shipped family + kind, or ``name`` itself when it is a
    checkpoint folder (a ``card.json`` inside, e.g. ``runs/ldm-demo-64/model``)."""
    folder = Path(name)
    if (folder / CARD).is_file():
        return folder
    candidate = SHIPPED_WEIGHTS / str(name) / kind
    if (candidate / CARD).is_file():
        return candidate
    models = shipped_models()
    if (SHIPPED_WEIGHTS / str(name)).is_dir():
        kinds = ", ".join(m.kind for m in models if m.name == str(name))
        raise InvalidInput(f"model {name!r} ships no {kind!r} checkpoint (it has: {kinds})")
    known = ", ".join(sorted({m.name for m in models})) or "none installed"
    raise InvalidInput(f"unknown model {str(name)!r}: not a shipped model ({known}) nor a checkpoint folder")


@dataclass(frozen=True)
class ShippedTraces:
    """One shipped checkpoint after ``export_shipped``: its trace folder and whether it was
    traced now (False: its traces were fresh and it was skipped)."""

    model: ShippedModel
    traces: Path
    built: bool


def export_shipped(force: bool = False) -> Iterator[ShippedTraces]:
    """Trace every shipped checkpoint that inference runs into the user's cache, skipping
    those whose traces are fresh (same weights, same networks, same torch) unless ``force``:
    what set-up runs each time, so a fresh cache costs one export and a warm one a few
    hashes. ``InvalidInput`` when the cache cannot be written."""
    for model in shipped_models():
        names = inference_networks(model.card())
        if not names:
            continue
        manifest = fresh_manifest(model.folder)
        fresh = manifest is not None and set(manifest) == trace_keys(names, traced_precisions(model.card()))
        if not force and fresh:
            yield ShippedTraces(model, trace_folder(model.folder), built=False)
        else:
            yield ShippedTraces(model, export_inference(model.folder), built=True)
