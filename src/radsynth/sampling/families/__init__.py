"""Generator families behind one protocol (``Generator``), chosen by the card's task."""

from collections.abc import Callable

from radsynth.sampling.families.base import UNGUIDED, BuildOptions, Generator, Run
from radsynth.sampling.families.gan import ConditionalGAN
from radsynth.sampling.families.ldm import LatentDiffusion, SamplingDefaults
from radsynth.sampling.families.vae import PriorVAE

# card task -> the family's constructor: from_card(card, modules, text_encoder, options)
GENERATORS: dict[str, Callable[..., Generator]] = {
    "ldm": LatentDiffusion.from_card,
    "gan": ConditionalGAN.from_card,
    "vae": PriorVAE.from_card,
}

__all__ = [
    "GENERATORS",
    "UNGUIDED",
    "BuildOptions",
    "ConditionalGAN",
    "Generator",
    "LatentDiffusion",
    "PriorVAE",
    "Run",
    "SamplingDefaults",
]
