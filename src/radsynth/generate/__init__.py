"""Generation workflow: load a shipped or trained model by name, write its images marked
synthetic with a contact sheet and a batch card (the CLI's and the service's one path)."""

from radsynth.generate.models import DEFAULT_KIND, list_models, load_pipeline, resolve_checkpoint
from radsynth.generate.outputs import (
    WrittenBatch,
    check_output_folder,
    patient_attributes,
    physical,
    write_batch,
)

__all__ = [
    "DEFAULT_KIND",
    "WrittenBatch",
    "check_output_folder",
    "list_models",
    "load_pipeline",
    "patient_attributes",
    "physical",
    "resolve_checkpoint",
    "write_batch",
]
