"""Sampling: solvers as pure functions, classifier-free guidance as a denoiser wrapper,
per-sample seeds, and the inference pipeline (prompt -> ``radsynth.io.Image`` list)."""

from radsynth.sampling.guidance import ClassifierFreeGuidance
from radsynth.sampling.pipeline import GenerationPipeline, SamplingDefaults, build_modules
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
    "SAMPLERS",
    "ClassifierFreeGuidance",
    "GenerationPipeline",
    "SamplingDefaults",
    "build_modules",
    "generators",
    "get_sampler",
    "randn_per_sample",
    "sample_ddim",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_seeds",
    "sample_unipc",
]
