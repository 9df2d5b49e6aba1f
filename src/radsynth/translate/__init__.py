"""Translation: a volume in, the translated volume out with the input's geometry, marked
synthetic like every radsynth output (``radsynth translate --task mr2ct in.nii.gz -o out.nii.gz``)."""

from radsynth.translate.files import translate_file
from radsynth.translate.volume import TASKS, load_translator, translate_volume

__all__ = ["TASKS", "load_translator", "translate_file", "translate_volume"]
