"""The generation pipeline: prompt -> list of ``radsynth.io.Image`` (inference only).

One ``generate(prompt, n, seed, steps, guidance)`` call for every generator family: the
family (``radsynth.sampling.families``: ``ldm``, ``gan``, ``vae``) turns conditioning
and per-sample seeds into pixels; the pipeline checks the request, encodes the prompt,
batches, runs the networks in the chosen precision and attaches each image's facts.

Images come back 2D (or 3D for ``spatial_dims=3``), float32 in [0, 1], with the training
data's pixel spacing (mm) and the modality the prompt names (else the one modality the
training captions named). A cascade's super-resolution stage (``upscale``:
``radsynth.sampling.cascade``) makes them ``factor`` times finer, spacing divided alike.
Image i is drawn from seed ``seed + i`` and, in fp32, does not depend on the batch it was
computed in (bf16 rounding does: see ``radsynth.models.precision``).

What the pipeline reads from a checkpoint's ``Card``: ``task`` (the family), ``model_id``,
``config`` (the sections the family needs; other keys, the training settings, are
ignored) and ``task_info``: ``image`` = {``size``: pixels in array order, ``spacing``: mm
in ``Image.spacing`` order (x, y[, z])}, optionally ``vocabulary`` =
``PromptVocabulary.to_dict()`` of the training captions (its ``modality`` and ``anatomy``
values are what the model draws: a prompt naming another modality, or only other
anatomy, is refused, ``OutOfDomain``; other unseen terms give low-confidence warnings),
and what the family reads itself (``sampling`` defaults for an LDM).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from radsynth.errors import CheckpointMismatch, InvalidInput, OutOfDomain
from radsynth.io.image import Image
from radsynth.models.card import Card
from radsynth.models.diffusion import Cond
from radsynth.models.precision import resolve_precision
from radsynth.models.registry import load_pretrained
from radsynth.sampling.bounds import LIBRARY
from radsynth.sampling.cascade import SuperResolution
from radsynth.sampling.families import GENERATORS, BuildOptions, Generator, Run
from radsynth.sampling.inference import cached_context_projections, fused_attention
from radsynth.sampling.seeds import sample_seeds
from radsynth.text.base import TextEncoder
from radsynth.text.phi import scrub_phi
from radsynth.text.prompt import PromptVocabulary, named_anatomies, parse_prompt, unknown_terms

log = logging.getLogger(__name__)
NO_SPACING = {"pixel_spacing": "unit: the model's card states no pixel spacing"}

KINDS = tuple(GENERATORS)  # one file per family: radsynth.sampling.families


@dataclass
class GenerationPipeline:
    """Wires one generator (already built, weights loaded) for inference.

    Build it with :meth:`from_checkpoint` or :meth:`from_modules` rather than by hand.
    Modules are moved to ``device`` and put in eval mode only while ``generate`` runs.
    ``batch_size`` bounds the network batch (CFG doubles it inside the UNet);
    ``precision``: ``fp32``, ``bf16`` (network forwards under ``torch.autocast(bfloat16)``,
    solver state in float32) or ``auto`` (bf16 where the device runs it faster; resolved
    here and recorded in every image's facts). ``fast_attention`` runs MONAI's attention
    through fused SDPA while generating (``radsynth.sampling.inference``). ``upscale``: a
    cascade's super-resolution stage run on every batch (None: the generator's size).
    ``spacing_known``: False when the card states no pixel spacing (the 1 mm used is then
    recorded as assumed, so writers leave it out rather than state it as fact).
    """

    generator: Generator
    kind: str
    image_size: tuple[int, ...]
    spacing: tuple[float, ...]
    vocabulary: PromptVocabulary | None = None
    model_id: str = ""
    batch_size: int = 16
    precision: str = "fp32"
    fast_attention: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    upscale: SuperResolution | None = None
    spacing_known: bool = True

    def __post_init__(self) -> None:
        if len(self.spacing) != len(self.image_size):
            raise InvalidInput(f"spacing {self.spacing} and image size {self.image_size} differ in length")
        if self.batch_size < 1:
            raise InvalidInput(f"batch_size must be >= 1, got {self.batch_size}")
        self.device = torch.device(self.device)
        self.precision = resolve_precision(self.precision, self.device)
        for module in self.generator.modules():
            module.to(self.device)
        if self.upscale is not None:
            self.upscale.net.to(self.device).eval()

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_modules(
        cls,
        modules: Mapping[str, nn.Module],
        card: Card,
        text_encoder: TextEncoder | None = None,
        build: BuildOptions | None = None,
        **options: Any,
    ) -> GenerationPipeline:
        """A pipeline from built modules with weights loaded and the checkpoint's card.

        ``modules`` holds what the family needs, named as its weights name them
        (``radsynth.models.registry.BUILDERS``). A frozen text encoder (MiniLM) is rebuilt
        from the card unless ``text_encoder`` is given (to share one between pipelines).
        ``build`` goes to the family; ``options`` to the constructor (``batch_size``,
        ``precision``, ``device``, ``fast_attention``, ``upscale``).
        """
        if card.task not in GENERATORS:
            raise CheckpointMismatch(f"card task {card.task!r} is not one of {', '.join(GENERATORS)}")
        size = card.image_size
        if size is None:
            raise CheckpointMismatch("card has no task_info.image.size (pixels of the training images)")
        vocab = card.task_info.get("vocabulary")
        return cls(
            generator=GENERATORS[card.task](card, modules, text_encoder, build or BuildOptions()),
            kind=card.task,
            image_size=size,
            spacing=card.spacing or (1.0,) * len(size),
            spacing_known=card.spacing is not None,
            vocabulary=PromptVocabulary.from_dict(vocab) if vocab else None,
            model_id=card.model_id,
            **options,
        )

    @classmethod
    def from_checkpoint(
        cls,
        folder: str | Path,
        *,
        compile: bool = False,
        distilled: bool = True,
        exported: bool = True,
        **options: Any,
    ) -> GenerationPipeline:
        """Load a checkpoint folder (``model.safetensors`` + ``card.json``) with the one
        loader (``radsynth.models.registry.load_pretrained``) and build the pipeline.

        ``compile``: run the LDM's UNet under ``torch.compile`` (pays only after its first
        batch: ``radsynth bench`` measures the break-even); ``distilled``: sample with the
        guidance-distilled UNet shipped beside an LDM at its scale (``False``: the guided
        teacher, two UNet rows per image and step). On the CPU in float32 with fused
        attention and no compile, the networks are the checkpoint's TorchScript exports in
        the resolved precision (fp32, or bf16 autocast) where the user's cache holds
        up-to-date ones (``radsynth.models.export``: no MONAI import), unless ``exported``
        is False (the eager networks, encoder included).
        """
        device = torch.device(options.get("device") or "cpu")
        precision = resolve_precision(options.get("precision", "fp32"), device)
        exported = exported and device.type == "cpu" and not compile and options.get("fast_attention", True)
        pretrained = load_pretrained(folder, exported=exported, precision=precision)
        build = BuildOptions(Path(folder), compile=compile, distilled=distilled)
        return cls.from_modules(pretrained.modules, pretrained.card, build=build, **options)

    # -- generation --------------------------------------------------------------------

    def check_domain(self, prompt: str) -> None:
        """Refuse a prompt outside what the model learnt (``OutOfDomain``, one line saying
        what it draws): a modality the training captions never named, or anatomy none of
        which they named. Nothing to refuse without a vocabulary."""
        vocab = self.vocabulary
        if vocab is None:
            return
        asked = parse_prompt(prompt)
        anatomies = named_anatomies(prompt)
        other_modality = bool(vocab.modality) and asked.modality not in (None, *vocab.modality)
        other_anatomy = bool(vocab.anatomy and anatomies) and not anatomies & vocab.anatomy
        if not (other_modality or other_anatomy):
            return
        what = " ".join(filter(None, (asked.modality, "images")))
        what += f" of the {asked.anatomy}" if asked.anatomy else ""
        name = f"model {self.model_id}" if self.model_id else "this model"
        raise OutOfDomain(f"{name} draws {vocab.domain()}, not {what}: the prompt is outside what it learnt")

    def check_prompt(self, prompt: str) -> list[str]:
        """What ``prompt`` names that the training captions never did (empty: all known)."""
        if self.vocabulary is None:
            return []
        return unknown_terms(parse_prompt(prompt), self.vocabulary)

    def generate(
        self,
        prompt: str,
        n: int = 1,
        seed: int = 0,
        steps: int | None = None,
        guidance: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Image]:
        """``n`` synthetic images for ``prompt``; image i uses seed ``seed + i``.

        ``on_progress(done, n)`` is called after each network batch (for progress bars).
        """
        prompt = self._check_request(prompt, n, seed)
        return self.generate_each([prompt] * n, sample_seeds(seed, n), steps, guidance, on_progress)

    def generate_each(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        steps: int | None = None,
        guidance: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Image]:
        """Image i from ``prompts[i]`` and seed ``seeds[i]``, as :meth:`generate` would draw it
        alone: a dataset plan's batch mixes prompts (the text encoder pads every prompt to
        the same length, so a batch's other prompts change no pixel). Each prompt is
        checked as :meth:`generate` checks its one."""
        if len(prompts) != len(seeds) or not seeds:
            raise InvalidInput(f"{len(prompts)} prompts but {len(seeds)} seeds")
        checked = {p: self._check_request(p, len(seeds), min(seeds)) for p in dict.fromkeys(prompts)}
        LIBRARY.check_sampling(steps, guidance)  # None: the model's own defaults
        unknown: dict[str, list[str]] = {}
        for prompt in checked.values():
            self.check_domain(prompt)
            unknown[prompt] = self.check_prompt(prompt)
            if unknown[prompt]:
                log.warning("low confidence: the model never saw %s", "; ".join(unknown[prompt]))
        prompts = [checked[p] for p in prompts]
        distinct = list(unknown)
        row = {p: k for k, p in enumerate(distinct)}
        n = len(seeds)
        with self._inference():
            encoded = self._encode(distinct)
            run = self.generator.run(steps, guidance, self.device)
            batches = []
            for i in range(0, n, self.batch_size):
                rows = [row[p] for p in prompts[i : i + self.batch_size]]
                cond = encoded if len(distinct) == 1 or encoded.context is None else _rows(encoded, rows)
                batches.append(self._draw(run, cond, list(seeds[i : i + self.batch_size])))
                if on_progress is not None:
                    on_progress(min(i + self.batch_size, n), n)
        pixels = torch.cat(batches).float().cpu().numpy()  # (n, 1, *size)
        factor = 1 if self.upscale is None else self.upscale.factor
        return [
            Image(
                array=pixels[i, 0].copy(),
                spacing=tuple(s / factor for s in self.spacing),
                modality=self._modality(prompt),
                metadata={**self._facts(prompt, run, unknown[prompt]), "seed": s},
            )
            for i, (prompt, s) in enumerate(zip(prompts, seeds, strict=True))
        ]

    def _facts(self, prompt: str, run: Run, unknown: list[str]) -> dict[str, Any]:
        """What every image of ``prompt`` records about how it was made."""
        return {
            "prompt": scrub_phi(prompt),
            "model_id": self.model_id,
            "model_kind": self.kind,
            **run.facts,
            "precision": self.precision,
            **({} if self.upscale is None else {"super_resolution": self.upscale.model_id}),
            **({} if self.spacing_known else {"geometry_assumed": dict(NO_SPACING)}),
            "low_confidence": bool(unknown),
            "unknown_terms": unknown,
            "synthetic": True,
        }

    def _modality(self, prompt: str) -> str:
        """The prompt's modality, else the training captions' only one, else OT (other)."""
        named = parse_prompt(prompt).modality
        learnt = sorted(self.vocabulary.modality) if self.vocabulary is not None else []
        return named or (learnt[0] if len(learnt) == 1 else "OT")

    def _check_request(self, prompt: str, n: int, seed: int) -> str:
        prompt = LIBRARY.check(prompt, n)
        if not isinstance(seed, int) or seed < 0:
            raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}")
        return prompt

    def sample(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        steps: int | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """One network batch with a prompt per sample: pixels (B, C, *size) in [0, 1].

        The raw tensor behind :meth:`generate`, without its checks, batching or image
        metadata; for benchmarks and cohort builders that mix prompts in one batch (sample
        i uses ``seeds[i]`` and ``prompts[i]``, as it would alone).
        """
        if len(prompts) != len(seeds):
            raise InvalidInput(f"{len(prompts)} prompts but {len(seeds)} seeds")
        with self._inference():
            run = self.generator.run(steps, guidance, self.device)
            return self._draw(run, self._encode(list(prompts)), list(seeds))

    def _encode(self, prompts: list[str]) -> Cond:
        if self.generator.text_encoder is None:
            return Cond()
        tokens, mask = self.generator.text_encoder.encode(prompts)  # (P, T, D), (P, T)
        return Cond(tokens.to(self.device), mask.to(self.device))

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """No autograd, eval mode, text keys / values once per run (eager: a compiled UNet
        has its graph), fused attention where asked."""
        modules = self.generator.modules()
        fused = fused_attention(modules) if self.fast_attention else contextlib.nullcontext()
        memo = contextlib.nullcontext() if self.generator.compiled else cached_context_projections(modules)
        with torch.inference_mode(), self._eval_mode(), fused, memo:
            yield

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode while generating, then each module's own mode back, so a training loop
        can preview samples from the modules it is training."""
        modules = self.generator.modules()
        modes = [[sub.training for sub in m.modules()] for m in modules]
        for m in modules:
            m.eval()
        try:
            yield
        finally:
            for m, mode in zip(modules, modes, strict=True):
                for sub, training in zip(m.modules(), mode, strict=True):
                    sub.training = training

    def _draw(self, run: Run, cond: Cond, seeds: list[int]) -> torch.Tensor:
        """One network batch, its forwards in the pipeline's precision: (b, C, *size) (times
        the stage's factor) in [0, 1]. The super-resolution stage runs in float32 outside
        autocast, as ``radsynth translate`` runs it: its TorchScript trace takes float32 only."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            pixels = run(cond, seeds)
        return pixels if self.upscale is None else self.upscale(pixels)


def _rows(cond: Cond, rows: list[int]) -> Cond:
    """The conditioning of one prompt per sample: ``rows`` index the encoded prompts."""
    index = torch.as_tensor(rows, device=cond.context.device)
    return Cond(cond.context[index], None if cond.mask is None else cond.mask[index])
