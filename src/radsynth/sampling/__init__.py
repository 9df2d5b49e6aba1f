"""Sampling: solvers as pure functions, classifier-free guidance as a denoiser wrapper,
per-sample seeds, the generator families behind one protocol (``families``), and the
inference pipeline (prompt -> ``radsynth.io.Image`` list)."""

from radsynth.sampling.families import GENERATORS, Generator, SamplingDefaults
from radsynth.sampling.guidance import ClassifierFreeGuidance
from radsynth.sampling.pipeline import GenerationPipeline
from radsynth.sampling.samplers import (
    SAMPLERS,
    get_sampler,
    sample_ddim,
    sample_dpmpp_2m,
    sample_euler,
    sample_unipc,
)
from radsynth.sampling.seeds import generators, randn_per_sample, sample_seeds

__all__ = [
    "GENERATORS",
    "SAMPLERS",
    "ClassifierFreeGuidance",
    "GenerationPipeline",
    "Generator",
    "SamplingDefaults",
    "generators",
    "get_sampler",
    "randn_per_sample",
    "sample_ddim",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_seeds",
    "sample_unipc",
]
