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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from radsynth import DEFAULT_FAMILY
from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.models.card import Card
from radsynth.models.checkpoint import CARD, load_card, load_checkpoint, load_into
from radsynth.models.classifier import AttributeClassifier, ClassifierConfig
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


def load_pretrained(folder: str | Path, task: str | None = None) -> Pretrained:
    """Read, build and load the checkpoint in ``folder``; ``task``: refuse any other task."""
    folder = Path(folder)
    state, raw = load_checkpoint(folder)
    card = Card.from_dict(raw, folder / CARD)
    if task is not None and card.task != task:
        raise InvalidInput(f"not a {task} checkpoint (its card says task {card.task!r})", folder)
    modules = build_modules(card, folder / CARD)
    load_into(modules, state, folder=folder)
    return Pretrained(folder, card, {name: module.eval() for name, module in modules.items()})


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
