"""Inference exports of the shipped networks, so ``generate`` and ``verify`` never import
MONAI (its package import alone was ~6 s of a 7.7 s cold start: issue 25). Training and
every other use stay on the eager MONAI networks, which the exports are tested against.

A checkpoint may have one TorchScript trace per network that inference runs (an LDM's
UNet, its distilled UNet and its VAE decoder; a GAN's generator; a VAE's decoder; a
classifier, detector or translator), traced on the CPU with MONAI's fused attention (the
path a pipeline takes by default), in float32, and where the CPU runs bf16 natively also
under bf16 autocast (``<name>@bf16``: the trace records autocast's casts, so it computes
exactly what the eager network does under autocast, which ``precision="auto"`` picks on
such a CPU). Beside them ``export.json`` = ``{name: {"file", "weights", "sha256", "torch",
"precision"}}``: the weights file each trace was made from, its hash and the torch that
traced it, so a retrained checkpoint or another torch never runs a stale trace (its loader
falls back to the eager networks: slower start, same images).

The traces are built on the user's machine, not shipped: they hold a second copy of the
weights (75 MB of the 150 MB budget for shipped files). They live in the user's cache
(:func:`trace_folder`), one folder per checkpoint folder; ``scripts/setup.sh`` builds
them for every shipped checkpoint, ``radsynth models export`` does it for a pip install,
and a missing or unwritable cache only means the eager networks.

Why TorchScript: ``torch.export``'s saved programs were measured too, and loading one
imports torch's export and dynamo stack (seconds), while ``torch.jit.load`` adds ~0.1 s.
Traces run with the graph executor's optimisation off: its profiling passes cost seconds
on the first calls and buy nothing for the few forwards of one command.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from radsynth.errors import InvalidInput
from radsynth.io.atomic import atomic_path
from radsynth.io.cache import cache_root
from radsynth.models.card import Card
from radsynth.models.gan import GANConfig
from radsynth.models.translator import TranslatorConfig, pad_to_multiple
from radsynth.models.unet import UNetConfig
from radsynth.models.vae import VAEConfig

MANIFEST = "export.json"
BF16 = "@bf16"  # the manifest key suffix of a network traced under bf16 autocast
TRACE_BATCH = 2  # traced at batch 2; the equivalence test runs batches 1 and 3 too
TOKENS = 48  # text tokens of the example inputs (traces take any number)

log = logging.getLogger(__name__)


class Exported(nn.Module):
    """A loaded trace behind the eager network's call signature."""

    def __init__(self, program: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.program = program

    def forward(self, *args: torch.Tensor):
        # Autocast off: a bf16 trace already holds autocast's casts, and casting again
        # under an enclosing autocast changes its results; an fp32 trace stays fp32.
        with torch.jit.optimized_execution(False), torch.autocast("cpu", enabled=False):
            return self.program(*args)


class ExportedDecoder(Exported):
    """A VAE decoder trace, called as the eager ``AutoencoderKL`` is when generating."""

    def decode_stage_2_outputs(self, z: torch.Tensor) -> torch.Tensor:
        return self(z)


class ExportedTranslator(Exported):
    """A translator trace: padding to the network's multiple stays outside the trace, so
    any slice size runs as in the eager ``Translator``."""

    def __init__(self, program: torch.jit.ScriptModule, multiple: int) -> None:
        super().__init__(program)
        self.multiple = multiple

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        padded, crop = pad_to_multiple(images, self.multiple)
        return super().forward(padded)[crop]


class _Padded(nn.Module):
    def __init__(self, translator: nn.Module) -> None:
        super().__init__()
        self.translator = translator

    def forward(self, padded: torch.Tensor) -> torch.Tensor:
        return self.translator.padded(padded)


class _Decoder(nn.Module):
    """The part of an ``AutoencoderKL`` that generation runs: latents -> images."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode_stage_2_outputs(z)


# card task -> the networks its inference runs (a distilled UNet, where shipped, is added)
INFERENCE_NETWORKS: dict[str, tuple[str, ...]] = {
    "ldm": ("unet", "vae"),
    "gan": ("generator",),
    "vae": ("vae",),
    "classifier": ("classifier",),
    "detector": ("detector",),
    "translate": ("translator",),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def example_inputs(name: str, card: Card, batch: int = TRACE_BATCH) -> tuple[torch.Tensor, ...]:
    """Inputs of the card's shapes for its network ``name``: what it is traced with, and
    what the equivalence test feeds both the trace and the eager network."""
    g = torch.Generator().manual_seed(batch)
    if name in ("classifier", "detector"):
        return (torch.rand(batch, 1, *card.image_size, generator=g) * 2 - 1,)  # images in [-1, 1]
    if name == "translator":  # any size; not a multiple of the network's, so padding shows
        channels = TranslatorConfig.from_dict(card.section("translator")).in_channels
        return (torch.rand(batch, channels, 72, 60, generator=g) * 2 - 1,)
    if name == "generator":
        gan = GANConfig.from_dict(card.section("gan"))
        mask = torch.arange(TOKENS).expand(batch, -1) < TOKENS // 2  # (B, T): half padding
        z = torch.randn(batch, gan.noise_dim, generator=g)
        return z, torch.randn(batch, TOKENS, gan.text_dim, generator=g), mask
    latent = VAEConfig.from_dict(card.section("vae")).latent_shape(card.image_size)
    z = torch.randn(batch, *latent, generator=g)  # (B, C, *latent)
    if name == "vae":
        return (z,)
    context_dim = UNetConfig.from_dict(card.section("unet")).cross_attention_dim
    return z, torch.linspace(999.0, 0.0, batch), torch.randn(batch, TOKENS, context_dim, generator=g)


def _traceable(name: str, module: nn.Module) -> nn.Module:
    for sub in module.modules():  # MONAI's fused-attention flag, as a pipeline sets it
        if isinstance(getattr(sub, "use_flash_attention", None), bool):
            sub.use_flash_attention = True
    if name == "vae":
        return _Decoder(module)
    if name == "translator":
        return _Padded(module)
    return module


def trace_folder(folder: Path) -> Path:
    """Where the traces of the checkpoint in ``folder`` live: ``<cache>/traces/<parent>-<name>-<key>``
    (``demo-ct-mr-64-ldm-<key>``), ``key`` a hash of the folder's resolved path, so two
    checkpoint folders (two checkouts' shipped weights, a run's ``model/``) never share
    traces; the manifest's weight hashes catch a folder retrained in place."""
    folder = folder.resolve()
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return cache_root() / "traces" / f"{folder.parent.name}-{folder.name}-{key}"


def trace_precisions() -> tuple[str, ...]:
    """float32 always; bf16 too where the CPU runs it natively (there ``auto`` means bf16)."""
    from radsynth.models.precision import cpu_has_fast_bf16

    return ("fp32", "bf16") if cpu_has_fast_bf16() else ("fp32",)


def trace_keys(names: Sequence[str], precisions: Sequence[str]) -> set[str]:
    """The manifest keys of ``names`` traced in ``precisions``."""
    return {name + (BF16 if precision == "bf16" else "") for name in names for precision in precisions}


def export_networks(
    folder: Path,
    card: Card,
    networks: dict[str, tuple[nn.Module, Path]],
    precisions: Sequence[str] | None = None,
) -> Path:
    """Trace each ``{name: (eager network, its weights file)}`` of the checkpoint in
    ``folder`` in each of ``precisions`` (default :func:`trace_precisions`) into its
    :func:`trace_folder`, replaced whole (a reader sees the old traces or the new, never a
    mix); returns that folder. ``InvalidInput`` when it cannot be written."""
    out = trace_folder(folder)
    manifest = {}
    try:
        with atomic_path(out) as tmp:
            tmp.mkdir()
            jobs = [(n, p) for p in (precisions or trace_precisions()) for n in networks]
            for name, precision in jobs:
                module, weights = networks[name]
                inputs = example_inputs(name, card)
                if name == "translator":
                    inputs = (pad_to_multiple(inputs[0], module.config.multiple)[0],)
                bf16 = precision == "bf16"
                autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
                key, file = (name + BF16, f"{name}.bf16.ts") if bf16 else (name, f"{name}.ts")
                with torch.no_grad(), autocast, warnings.catch_warnings():
                    # MONAI's shape checks become constants: right for every batch size and
                    # token count, which the equivalence test runs (tests/models/test_export.py)
                    warnings.simplefilter("ignore", torch.jit.TracerWarning)
                    warnings.filterwarnings("ignore", ".*torch.jit.* is deprecated", DeprecationWarning)
                    traceable = _traceable(name, module.eval())
                    program = torch.jit.trace(traceable, inputs, strict=False, check_trace=False)
                    torch.jit.save(program, str(tmp / file))
                manifest[key] = {
                    "file": file,
                    "weights": weights.name,
                    "sha256": sha256(weights),
                    "torch": torch.__version__,
                    "precision": precision,
                }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        raise InvalidInput(f"cannot write the inference traces: {err.strerror or err}", out) from None
    return out


def fresh_manifest(folder: Path) -> dict[str, dict[str, str]] | None:
    """The trace manifest of the checkpoint in ``folder`` when every trace in it was made
    from the weights the folder holds now, by this torch; else None (none, stale, unreadable)."""
    path = trace_folder(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        hashes: dict[str, str] = {}
        for entry in manifest.values():
            weights = folder / entry["weights"]
            if entry.get("torch") != torch.__version__ or not weights.is_file():
                return None
            hashes.setdefault(entry["weights"], sha256(weights))
            if hashes[entry["weights"]] != entry["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # missing or not our format
        return None
    return manifest


def load_exported(folder: Path, card: Card, precision: str = "fp32") -> dict[str, nn.Module] | None:
    """The traces of the checkpoint in ``folder`` (its ``card``) in ``precision`` (fp32 or
    bf16) as modules, or None (one debug line) when it has none, any is stale or any does
    not load."""
    manifest = fresh_manifest(folder)
    bf16 = precision == "bf16"
    if manifest is not None:
        manifest = {k.removesuffix(BF16): e for k, e in manifest.items() if k.endswith(BF16) == bf16}
    if not manifest:
        log.debug("%s: no fresh %s traces in %s; eager networks", folder, precision, trace_folder(folder))
        return None
    wrap = {
        "vae": ExportedDecoder,
        "translator": lambda program: ExportedTranslator(
            program, TranslatorConfig.from_dict(card.section("translator")).multiple
        ),
    }
    traces = trace_folder(folder)
    try:
        with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated; see the module docstring
            warnings.filterwarnings("ignore", ".*torch.jit.load. is deprecated", DeprecationWarning)
            return {
                name: wrap.get(name, Exported)(torch.jit.load(str(traces / entry["file"]))).eval()
                for name, entry in manifest.items()
            }
    except (OSError, RuntimeError) as err:  # a cache file damaged since it was written
        log.debug("%s: traces in %s do not load (%s); eager networks", folder, traces, err)
        return None
