"""The generation pipeline: prompt -> list of ``radsynth.io.Image`` (inference only).

One ``generate(prompt, n, seed, steps, guidance)`` call for all three generators:

- ``ldm``: text encoder -> guided denoiser (UNet) -> sampler on VAE latents -> VAE decoder;
- ``gan``: text encoder -> conditional generator from per-sample noise;
- ``vae``: per-sample latents from the prior N(0, I) -> VAE decoder (unconditional: the
  prompt only sets the output's modality and metadata).

Images come back 2D (or 3D for ``spatial_dims=3``), float32 in [0, 1], with the training
data's pixel spacing (mm) and the modality the prompt names. Image i is drawn from seed
``seed + i`` and does not depend on the batch it was computed in.

What the pipeline reads from a checkpoint card (``radsynth.models.checkpoint``):

- ``task``: "ldm" | "gan" | "vae"; ``model_id``;
- ``config``: the sections the task needs, as ``to_dict()`` / ``config()`` dicts:
  ``vae`` (``VAEConfig``, whose ``latent_scale`` is the measured one), ``unet``,
  ``noise`` (``NoiseConfig``; {} = defaults), ``gan``, ``text_encoder``; other keys (the
  training settings) are ignored;
- ``task_info``: ``image`` = {``size``: pixels in array order, ``spacing``: mm in
  ``Image.spacing`` order (x, y[, z])}; optionally ``sampling`` = {``sampler``, ``steps``,
  ``guidance``, ``guidance_interval``} defaults and ``vocabulary`` =
  ``PromptVocabulary.to_dict()`` of the training captions (for low-confidence warnings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.io.image import Image
from radsynth.models.diffusion import Cond, Denoiser, NoiseConfig, NoiseSchedule
from radsynth.models.gan import GANConfig, build_gan
from radsynth.models.intensity import to_unit_range
from radsynth.models.unet import UNetConfig, build_unet
from radsynth.models.vae import VAEConfig, build_vae
from radsynth.sampling.bounds import KINDS, LIBRARY
from radsynth.sampling.guidance import ClassifierFreeGuidance, check_interval
from radsynth.sampling.inference import cached_context_projections, fused_attention
from radsynth.sampling.samplers import DEFAULT_SAMPLER, get_sampler
from radsynth.sampling.seeds import generators, randn_per_sample, sample_seeds
from radsynth.text.base import TextEncoder
from radsynth.text.phi import scrub_phi
from radsynth.text.prompt import PromptVocabulary, parse_prompt, unknown_terms
from radsynth.text.registry import build_text_encoder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingDefaults:
    """What ``generate`` uses when the caller leaves ``steps`` / ``guidance`` out;
    ``guidance_interval``: guide only at these timestep fractions (``ClassifierFreeGuidance``)."""

    sampler: str = "dpmpp_2m"
    steps: int = 25
    guidance: float = 4.0
    guidance_interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "guidance_interval", check_interval(self.guidance_interval))


@dataclass
class GenerationPipeline:
    """Wires already-built, already-loaded modules for one generator kind.

    Build it with :meth:`from_modules` (from modules + card) rather than by hand.
    Modules are moved to ``device`` and put in eval mode only while ``generate`` runs.
    ``batch_size`` bounds the network batch (CFG doubles it inside the UNet); ``bf16``
    runs network forwards under ``torch.autocast(dtype=bfloat16)`` while the solver state
    stays float32. ``compile`` compiles the LDM's UNet with ``torch.compile`` (in place,
    one graph per batch shape): the first batch then pays the compilation (about a minute
    on 2 CPU cores), every later one runs the fused kernels, so it pays for long runs
    (``radsynth bench`` measures both and the break-even). ``fast_attention`` runs MONAI's
    attention through fused SDPA while generating (``radsynth.sampling.inference``).
    ``distilled``: a guidance-distilled UNet (Meng et al. 2023) that gives the guided
    prediction at scale ``distilled_guidance`` in one forward; sampling at that scale (and
    without a guidance interval) uses it instead of two guided rows per image.
    """

    kind: str
    image_size: tuple[int, ...]
    spacing: tuple[float, ...]
    text_encoder: TextEncoder | None = None
    vae: nn.Module | None = None
    vae_config: VAEConfig | None = None
    denoiser: Denoiser | None = None
    generator_net: nn.Module | None = None
    gan_config: GANConfig | None = None
    defaults: SamplingDefaults = field(default_factory=SamplingDefaults)
    vocabulary: PromptVocabulary | None = None
    model_id: str = ""
    batch_size: int = 16
    bf16: bool = False
    compile: bool = False
    fast_attention: bool = True
    distilled: Denoiser | None = None
    distilled_guidance: float | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"model kind {self.kind!r} is not one of {', '.join(KINDS)}")
        needs = {
            "ldm": ("text_encoder", "vae", "vae_config", "denoiser"),
            "gan": ("text_encoder", "generator_net", "gan_config"),
            "vae": ("vae", "vae_config"),
        }[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise InvalidInput(f"a {self.kind} pipeline needs {', '.join(missing)}")
        if len(self.spacing) != len(self.image_size):
            raise InvalidInput(f"spacing {self.spacing} and image size {self.image_size} differ in length")
        if self.batch_size < 1:
            raise InvalidInput(f"batch_size must be >= 1, got {self.batch_size}")
        self.device = torch.device(self.device)
        if self.kind == "ldm":
            self._check_sampler(self.defaults.sampler)
        for module in (self.vae, self.denoiser, self.distilled, self.generator_net, self.text_encoder):
            if isinstance(module, nn.Module):
                module.to(self.device)
        if self.compile and self.kind == "ldm":
            for denoiser in (self.denoiser, self.distilled):
                if denoiser is not None:
                    denoiser.network.compile(dynamic=False)

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_modules(
        cls,
        modules: dict[str, nn.Module],
        card: dict[str, Any],
        text_encoder: TextEncoder | None = None,
        **options: Any,
    ) -> GenerationPipeline:
        """A pipeline from built modules with weights loaded and the checkpoint's card.

        ``modules`` holds what the kind needs: ``vae`` and ``unet`` (ldm), ``generator``
        (gan), ``vae`` (vae), plus ``text_encoder`` for a learned encoder. A frozen encoder
        (MiniLM) is rebuilt from ``card["config"]["text_encoder"]`` unless ``text_encoder``
        is given (to share one between pipelines). ``options`` go to the constructor
        (``batch_size``, ``bf16``, ``device``).
        """
        kind, configs = _card_kind_and_configs(card)
        info = card.get("task_info") or {}
        image = info.get("image") or {}
        size, spacing = image.get("size"), image.get("spacing")
        if size is None:
            raise CheckpointMismatch("card has no task_info.image.size (pixels of the training images)")
        size = tuple(int(s) for s in size)
        spacing = tuple(float(s) for s in spacing) if spacing is not None else (1.0,) * len(size)
        sampling = dict(info.get("sampling") or {})
        vocab = info.get("vocabulary")
        args: dict[str, Any] = {
            "kind": kind,
            "image_size": size,
            "spacing": spacing,
            "model_id": str(card.get("model_id", "")),
            "vocabulary": PromptVocabulary.from_dict(vocab) if vocab else None,
        }
        if kind in ("ldm", "gan"):
            args["text_encoder"] = text_encoder or modules.get("text_encoder") or _encoder_from(configs)
        if kind in ("ldm", "vae"):
            args["vae"] = _module(modules, "vae")
            args["vae_config"] = VAEConfig.from_dict(_config(configs, "vae"))
        if kind == "ldm":
            UNetConfig.from_dict(_config(configs, "unet"))  # a card that does not parse fails here, not later
            schedule = NoiseSchedule(NoiseConfig.from_dict(configs.get("noise", {})))
            args["denoiser"] = Denoiser(_module(modules, "unet"), schedule)
            sampling.setdefault("sampler", DEFAULT_SAMPLER[schedule.config.kind])
        if kind == "gan":
            args["generator_net"] = _module(modules, "generator")
            args["gan_config"] = GANConfig.from_dict(_config(configs, "gan"))
        unknown = sorted(set(sampling) - {f.name for f in dataclasses.fields(SamplingDefaults)})
        if unknown:
            raise CheckpointMismatch(f"card task_info.sampling has unknown key(s) {', '.join(unknown)}")
        try:
            defaults = SamplingDefaults(**sampling)
        except InvalidInput as err:
            raise CheckpointMismatch(f"card task_info.sampling: {err.problem}") from None
        return cls(**args, defaults=defaults, **options)

    @classmethod
    def from_checkpoint(cls, folder: str | Path, **options: Any) -> GenerationPipeline:
        """Load a checkpoint folder (``model.safetensors`` + ``card.json``, written by
        ``radsynth.models.checkpoint.save_checkpoint``) and build the pipeline.

        The weights' module names are those of :meth:`from_modules` (``vae``, ``unet``,
        ``generator``, ``text_encoder`` for a learned encoder); :func:`build_modules` makes
        the modules from the card, ``restore`` loads them strictly.
        """
        from radsynth.models.checkpoint import load_card, restore

        card = load_card(folder)
        try:
            modules = build_modules(card)
        except InvalidInput as err:  # a card whose config does not parse is a bad checkpoint
            raise CheckpointMismatch(err.problem, folder) from None
        restore(folder, modules)  # strict: every module, key and shape, or CheckpointMismatch
        distilled = (card.get("task_info") or {}).get("distilled_unet")
        if options.pop("distilled", True) and distilled:  # distilled=False: the guided teacher only
            options["distilled"] = _distilled_unet(Path(folder), card, distilled)
            options["distilled_guidance"] = float(distilled["guidance"])
        return cls.from_modules(modules, card, **options)

    def use_sampler(self, name: str) -> None:
        """Sample with ``name`` (``ddim``, ``dpmpp_2m``; ``euler`` for rectified flow) from now on."""
        if self.kind != "ldm":
            raise InvalidInput(f"a {self.kind} model has no sampler to choose")
        self._check_sampler(name)
        self.defaults = dataclasses.replace(self.defaults, sampler=name)

    def use_guidance_interval(self, interval: tuple[float, float] | None) -> None:
        """Guide only at timestep fractions in ``interval`` from now on (None: every step)."""
        if self.kind != "ldm":
            raise InvalidInput(f"a {self.kind} model has no guidance to limit")
        self.defaults = dataclasses.replace(self.defaults, guidance_interval=interval)

    def _check_sampler(self, name: str) -> None:
        get_sampler(name)  # an unknown name fails here, naming the choices
        schedule_kind = self.denoiser.schedule.config.kind
        wanted = DEFAULT_SAMPLER[schedule_kind]
        if (name == "euler") != (wanted == "euler"):
            raise InvalidInput(
                f"sampler {name!r} does not fit the {schedule_kind!r} schedule; use {wanted!r}"
            )

    # -- generation --------------------------------------------------------------------

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
        steps = self.defaults.steps if steps is None else steps
        guidance = self.defaults.guidance if guidance is None else guidance
        LIBRARY.check_sampling(steps if self.kind == "ldm" else None, guidance)
        unknown = self.check_prompt(prompt)
        if unknown:
            log.warning("low confidence: the model never saw %s", "; ".join(unknown))
        seeds = sample_seeds(seed, n)
        with self._inference():
            cond = self._encode([prompt])
            denoiser = self._guided(guidance) if self.kind == "ldm" else None
            batches = []
            for i in range(0, n, self.batch_size):
                batches.append(self._generate_batch(cond, seeds[i : i + self.batch_size], steps, denoiser))
                if on_progress is not None:
                    on_progress(min(i + self.batch_size, n), n)
        pixels = torch.cat(batches).float().cpu().numpy()  # (n, 1, *size)
        facts = {
            "prompt": scrub_phi(prompt),
            "model_id": self.model_id,
            "model_kind": self.kind,
            "steps": steps if self.kind == "ldm" else None,
            "guidance": guidance if self.kind == "ldm" else None,
            "sampler": self.defaults.sampler if self.kind == "ldm" else None,
            "guidance_interval": list(self.defaults.guidance_interval)
            if self.kind == "ldm" and self.defaults.guidance_interval
            else None,
            "guidance_distilled": self.kind == "ldm" and self.uses_distilled(guidance),
            "low_confidence": bool(unknown),
            "unknown_terms": unknown,
            "synthetic": True,
        }
        modality = parse_prompt(prompt).modality or "OT"
        return [
            Image(
                array=pixels[i, 0].copy(),
                spacing=self.spacing,
                modality=modality,
                metadata={**facts, "seed": s},
            )
            for i, s in enumerate(seeds)
        ]

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
        steps = self.defaults.steps if steps is None else steps
        guidance = self.defaults.guidance if guidance is None else guidance
        with self._inference():
            denoiser = self._guided(guidance) if self.kind == "ldm" else None
            return self._generate_batch(self._encode(list(prompts)), list(seeds), steps, denoiser)

    def _encode(self, prompts: list[str]) -> Cond:
        if self.text_encoder is None:
            return Cond()
        tokens, mask = self.text_encoder.encode(prompts)  # (P, T, D), (P, T)
        return Cond(tokens.to(self.device), mask.to(self.device))

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        """No autograd, eval mode, text keys / values once per run (eager: a compiled UNet
        has its graph), fused attention where asked."""
        fused = fused_attention(self._modules()) if self.fast_attention else contextlib.nullcontext()
        memo = contextlib.nullcontext() if self.compile else cached_context_projections(self._modules())
        with torch.inference_mode(), self._eval_mode(), fused, memo:
            yield

    def _modules(self) -> list[nn.Module]:
        return [
            m
            for m in (self.vae, self.denoiser, self.distilled, self.generator_net, self.text_encoder)
            if isinstance(m, nn.Module)
        ]

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Eval mode while generating, then each module's own mode back, so a training loop
        can preview samples from the modules it is training."""
        modules = self._modules()
        modes = [[sub.training for sub in m.modules()] for m in modules]
        for m in modules:
            m.eval()
        try:
            yield
        finally:
            for m, mode in zip(modules, modes, strict=True):
                for sub, training in zip(m.modules(), mode, strict=True):
                    sub.training = training

    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            yield

    def _generate_batch(
        self, cond: Cond, seeds: list[int], steps: int, denoiser: ClassifierFreeGuidance | None
    ) -> torch.Tensor:
        b, gens = len(seeds), generators(seeds)
        if self.kind == "gan":
            z = randn_per_sample((self.gan_config.noise_dim,), gens, self.device)  # (b, noise_dim)
            with self._autocast():
                images = self.generator_net(z, cond.context.expand(b, -1, -1), cond.mask.expand(b, -1))
            return to_unit_range(images.float())
        latent_shape = self.vae_config.latent_shape(self.image_size)
        z = randn_per_sample(latent_shape, gens, self.device)  # (b, C, *latent)
        if self.kind == "ldm":
            batch_cond = Cond(cond.context.expand(b, -1, -1), cond.mask.expand(b, -1))  # (b, T, D), (b, T)
            with self._autocast():
                z = get_sampler(self.defaults.sampler)(denoiser, z, steps, batch_cond, gens)
            z = z / self.vae_config.latent_scale
        with self._autocast():
            images = self.vae.decode_stage_2_outputs(z)  # batched decoding, (b, C, *size)
        return to_unit_range(images.float())

    def uses_distilled(self, guidance: float) -> bool:
        """Whether sampling at ``guidance`` runs the distilled UNet (one row per image)."""
        return (
            self.distilled is not None
            and guidance == self.distilled_guidance
            and self.defaults.guidance_interval is None
        )

    def _guided(self, guidance: float) -> ClassifierFreeGuidance | Denoiser:
        if self.uses_distilled(guidance):
            return self.distilled
        tokens, mask = self.text_encoder.encode([""])  # the unconditional input seen in training
        return ClassifierFreeGuidance(
            self.denoiser,
            (tokens.to(self.device), mask.to(self.device)),
            guidance,
            self.defaults.guidance_interval,
        )


def _card_kind_and_configs(card: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if not isinstance(card, dict):
        raise CheckpointMismatch("card is not a JSON object")
    kind = card.get("task")
    if kind not in KINDS:
        raise CheckpointMismatch(f"card task {kind!r} is not one of {', '.join(KINDS)}")
    configs = card.get("config")
    if not isinstance(configs, dict):
        raise CheckpointMismatch("card has no config mapping")
    return kind, configs


def _config(configs: dict[str, Any], name: str) -> dict[str, Any]:
    if name not in configs:
        raise CheckpointMismatch(f"card config has no {name!r} section")
    return configs[name]


def _module(modules: dict[str, nn.Module], name: str) -> nn.Module:
    if name not in modules:
        raise CheckpointMismatch(f"no {name!r} module among {sorted(modules)}")
    return modules[name]


def _encoder_from(configs: dict[str, Any]) -> TextEncoder:
    return build_text_encoder(_config(configs, "text_encoder"))


def _distilled_unet(folder: Path, card: dict[str, Any], info: dict[str, Any]) -> Denoiser:
    """The guidance-distilled UNet shipped beside an LDM checkpoint (``info["file"]``, its
    weights stored in float16 to halve the download; run in float32)."""
    from safetensors.torch import load_file

    path = folder / str(info.get("file", ""))
    if not path.is_file():
        raise CheckpointMismatch(f"card names a distilled UNet {path.name!r} that is not there", folder)
    net = build_unet(UNetConfig.from_dict(_config(card["config"], "unet")))
    try:
        net.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    except (RuntimeError, OSError) as err:
        raise CheckpointMismatch(f"distilled UNet does not fit the card's UNet ({err})"[:300], path) from None
    return Denoiser(net, NoiseSchedule(NoiseConfig.from_dict(card["config"].get("noise", {}))))


def build_modules(card: dict[str, Any]) -> dict[str, nn.Module]:
    """Freshly initialised modules for a card, named as :meth:`GenerationPipeline.from_modules`
    expects them (load the checkpoint's state dicts into them)."""
    kind, configs = _card_kind_and_configs(card)
    modules: dict[str, nn.Module] = {}
    if kind in ("ldm", "vae"):
        modules["vae"] = build_vae(VAEConfig.from_dict(_config(configs, "vae")))
    if kind == "ldm":
        modules["unet"] = build_unet(UNetConfig.from_dict(_config(configs, "unet")))
    if kind == "gan":
        modules["generator"] = build_gan(GANConfig.from_dict(_config(configs, "gan")))[0]
    if kind in ("ldm", "gan") and _config(configs, "text_encoder").get("kind") == "learned":
        modules["text_encoder"] = build_text_encoder(configs["text_encoder"])
    return modules
