"""Evaluation of synthetic images against real ones: fidelity (radiomics and domain
Fréchet distances, KID, precision/recall/density/coverage), diversity (MS-SSIM,
duplicates), text adherence, privacy (nearest training image, membership inference) and
downstream utility, drawn into one HTML report (``radsynth evaluate``)."""

from radsynth.evaluate.adherence import adherence, adherence_to, prompt_attributes
from radsynth.evaluate.features import DomainReader, radiomics_features
from radsynth.evaluate.frechet import frechet_distance, frechet_radiomics_distance, zscore_against
from radsynth.evaluate.report import write_report
from radsynth.evaluate.run import Evaluation, EvaluationOptions, Models, evaluate
from radsynth.evaluate.sets import ImageSet, load_set, synthetic_set

__all__ = [
    "DomainReader",
    "Evaluation",
    "EvaluationOptions",
    "ImageSet",
    "Models",
    "adherence",
    "adherence_to",
    "evaluate",
    "frechet_distance",
    "frechet_radiomics_distance",
    "load_set",
    "prompt_attributes",
    "radiomics_features",
    "synthetic_set",
    "write_report",
    "zscore_against",
]
