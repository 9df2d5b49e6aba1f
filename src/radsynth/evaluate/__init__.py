"""Evaluation of synthetic images against real ones: feature spaces (radiomics, domain
classifier), Fréchet distances, and text adherence."""

from radsynth.evaluate.adherence import adherence, prompt_attributes
from radsynth.evaluate.features import DomainReader, radiomics_features
from radsynth.evaluate.frechet import frechet_distance, frechet_radiomics_distance, zscore_against

__all__ = [
    "DomainReader",
    "adherence",
    "frechet_distance",
    "frechet_radiomics_distance",
    "prompt_attributes",
    "radiomics_features",
    "zscore_against",
]
