"""Translation tasks: restoration trained by degrading real images (``denoise``, ``sr``),
paired translation (``paired``, pix2pix: L1 + optional patch adversarial) and unpaired
translation (``cycle``, CycleGAN: adversarial + cycle consistency + identity).

``paired`` takes its pairs from the selected records: records that share a pair key
(``extra.pair_id``, else subject + plane + slice) and match ``source`` / ``target``
(record fields, e.g. ``{contrast: T1-weighted}``); with ``inputs`` (several filters) the
matching records of one slice are stacked as channels (T1 + T2 -> FLAIR). A translator
with ``model.flow_steps`` learns a conditional flow on the same pairs (the target
estimated from a noised point of the straight path from the input to it).
``cycle`` splits each batch into the ``source`` and ``target`` images by the same filters.

Restoration sees CT as ``radsynth translate`` feeds it: on the fixed HU scale
``TRANSLATION_HU_RANGE``, not in a display window. Each windowed training slice is mapped
back to HU (its window says how; values the window clipped stay clipped) before it is
degraded, so the noise level and contrast the model learns are those of real HU volumes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from radsynth.data.degrade import lower_resolution, poisson_gaussian, rician, uniform
from radsynth.data.manifest import Record, read_unit_image
from radsynth.data.normalise import WINDOWS, window_name
from radsynth.data.paired import TRANSLATION_HU_RANGE
from radsynth.errors import InvalidInput
from radsynth.models.intensity import to_model_range
from radsynth.models.translator import FLOW_NOISE, Translator, TranslatorConfig, build_discriminator
from radsynth.train.config import TrainConfig
from radsynth.train.data import TrainingData
from radsynth.train.task import Batch, StepContext
from radsynth.train.tasks.common import adam, image_fields, parse_options

MODES = ("denoise", "sr", "paired", "cycle")


@dataclass(frozen=True)
class TranslateOptions:
    """``mr_sigma``: Rician sigma range (fraction of the range); ``ct_photons``: Poisson
    counts per unit intensity (fewer = noisier), ``ct_sigma``: read-out noise; ``sr_factors``:
    resolution losses drawn per sample; ``patch``: restoration trains on random square
    crops of this side (0: whole slices), so a corpus near native resolution (``demo:256``)
    teaches the pixel-scale statistics of real scans at a small slice's cost;
    ``inputs``: several input filters, stacked as channels in this order (paired; replaces
    ``source``); ``adversarial``: patch-GAN weight (paired);
    ``cycle_weight`` / ``identity_weight``: CycleGAN's lambda and its identity term;
    ``structure_weight``: a structure constraint between each translation and its source
    (cycle): the L1 distance of their MIND descriptors (``mind``; Heinrich et al. 2012),
    as in Yang et al. 2018's structure-constrained CycleGAN for MR -> CT. MIND describes
    each pixel by how alike its neighbourhood is to the neighbourhoods around it, so it
    is the same for MR and CT of one anatomy whatever the contrast (bone is dark in T1,
    bright in CT), and it penalises an edge painted into a region that is flat in the
    source. Without it the demo CycleGAN painted bright "bone" blobs into the brain; a
    local-correlation constraint (LNCC) did not stop them, since correlation is undefined
    where the source is flat."""

    mode: str = "denoise"
    mr_sigma: tuple[float, ...] = (0.01, 0.06)
    ct_photons: tuple[float, ...] = (300.0, 3000.0)
    ct_sigma: float = 0.005
    sr_factors: tuple[int, ...] = (2, 4)
    patch: int = 0
    source: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[dict[str, Any], ...] = ()
    target: dict[str, Any] = field(default_factory=dict)
    adversarial: float = 0.0
    cycle_weight: float = 10.0
    identity_weight: float = 0.5
    structure_weight: float = 0.0
    crop: int = 48

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"options.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode in ("paired", "cycle") and not ((self.source or self.inputs) and self.target):
            raise InvalidInput(f"options.source and options.target are needed for mode {self.mode!r}")
        if self.inputs and (self.source or self.mode != "paired"):
            raise InvalidInput("options.inputs (several inputs) replaces options.source, in paired mode only")

    @property
    def sources(self) -> tuple[dict[str, Any], ...]:
        """The input filters in channel order (one: ``source``)."""
        return self.inputs or (self.source,)


def matches(record: Record, wanted: Mapping[str, Any]) -> bool:
    """Every field in ``wanted`` equals the record's (a record field, or a label)."""
    return all(getattr(record, k, (record.labels or {}).get(k)) == v for k, v in wanted.items())


def hu_scale(records: list[Record]) -> torch.Tensor:
    """(N, 2) (a, b) per record so ``a * x + b`` takes a CT slice from its window's [0, 1]
    to ``TRANSLATION_HU_RANGE``'s; identity for other modalities."""
    lo, hi = TRANSLATION_HU_RANGE
    out = torch.tensor([[1.0, 0.0]]).repeat(len(records), 1)
    for i, r in enumerate(records):
        if r.modality == "CT":
            level, width = WINDOWS[window_name(r.window or "soft_tissue")]
            out[i] = torch.tensor([width / (hi - lo), (level - width / 2 - lo) / (hi - lo)])
    return out


def mind(images: torch.Tensor, radius: int = 1, distance: int = 2) -> torch.Tensor:
    """MIND descriptors (Heinrich et al. 2012, eq. 4) of (B, 1, H, W) images, with the four
    neighbours ``distance`` pixels away and (2 radius + 1)^2 patches: (B, 4, H, W) in (0, 1],
    1 where a neighbour's patch matches the pixel's own."""
    d, size = distance, 2 * radius + 1
    padded = nn.functional.pad(images, (d, d, d, d), mode="replicate")
    h, w = images.shape[-2:]
    shifted = [
        padded[..., d + dy : d + dy + h, d + dx : d + dx + w] for dy, dx in ((0, d), (d, 0), (0, -d), (-d, 0))
    ]
    distances = torch.cat(
        [
            nn.functional.avg_pool2d(
                (images - s) ** 2, size, stride=1, padding=radius, count_include_pad=False
            )
            for s in shifted
        ],
        dim=1,
    )
    variance = distances.mean(dim=1, keepdim=True)
    mean = variance.mean(dim=(1, 2, 3), keepdim=True)  # per image: bounds for flat regions
    variance = torch.maximum(variance, mean * 1e-3) + 1e-6
    descriptor = torch.exp(-distances / variance)
    return descriptor / descriptor.amax(dim=1, keepdim=True)


def random_crops(images: torch.Tensor, side: int) -> torch.Tensor:
    """A random ``side`` x ``side`` crop of each image (B, C, H, W), the same window through
    all its channels (an aligned pair stacked as channels stays aligned); all of it when
    ``side`` is 0 or not smaller than the image."""
    h, w = images.shape[-2:]
    if side <= 0 or (side >= h and side >= w):
        return images
    side_h, side_w = min(side, h), min(side, w)
    ys = torch.randint(0, h - side_h + 1, (len(images),)).tolist()
    xs = torch.randint(0, w - side_w + 1, (len(images),)).tolist()
    return torch.stack(
        [im[..., y : y + side_h, x : x + side_w] for im, y, x in zip(images, ys, xs, strict=True)]
    )


def pair_key(record: Record) -> str:
    extra = record.extra or {}
    return str(extra.get("pair_id") or f"{record.subject}/{record.plane}/{extra.get('slice', '')}")


class TranslateTask:
    shipped: tuple[str, ...] = ("translator",)
    ema: tuple[str, ...] = ("translator",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.options: TranslateOptions = parse_options(TranslateOptions, config)
        # restoration is a small correction of its input: residual unless the recipe says
        self.net_config = TranslatorConfig.from_dict(
            {
                "residual": self.options.mode in ("denoise", "sr"),
                "in_channels": len(self.options.sources),
                **dict(config.model),
            }
        )
        if self.net_config.in_channels != len(self.options.sources):
            raise InvalidInput(
                f"model.in_channels is {self.net_config.in_channels} but options name "
                f"{len(self.options.sources)} input(s)"
            )
        if self.net_config.flow_steps and self.options.mode != "paired":
            raise InvalidInput("a flow translator (model.flow_steps) is trained in paired mode only")
        self.translator = Translator(self.net_config)
        self.modules_ = {"translator": self.translator}
        if self.options.mode == "cycle":
            back = TranslatorConfig.from_dict({**self.net_config.to_dict()})
            self.modules_["backward"] = Translator(back)
            self.modules_["critic_target"] = build_discriminator(self.net_config)
            self.modules_["critic_source"] = build_discriminator(self.net_config)
            self.is_source = torch.tensor([matches(r, self.options.source) for r in data.records])
            self.is_target = torch.tensor([matches(r, self.options.target) for r in data.records])
            if self.options.structure_weight and self.net_config.spatial_dims != 2:
                raise InvalidInput("options.structure_weight (MIND) is implemented for 2D models only")
            if not self.is_source.any() or not self.is_target.any():
                raise InvalidInput(
                    "cycle training needs records matching both options.source and options.target"
                )
        if self.options.mode in ("denoise", "sr"):
            self.to_hu_scale = hu_scale(data.records)
        if self.options.mode == "paired":
            self.pairs = self._pairs()
            if self.options.adversarial > 0:
                self.modules_["critic_target"] = build_discriminator(self.net_config)

    def modules(self) -> dict[str, nn.Module]:
        return dict(self.modules_)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        generators = [
            p for k in ("translator", "backward") if k in self.modules_ for p in self.modules_[k].parameters()
        ]
        out = {"translator": adam(generators, self.config.lr, betas)}
        critics = [p for k, m in self.modules_.items() if k.startswith("critic") for p in m.parameters()]
        if critics:
            out["critics"] = adam(critics, self.config.lr, betas)
        return out

    def step(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        if self.options.mode == "cycle":
            return self._cycle_step(batch, ctx)
        source, target = self._paired_batch(batch) if self.options.mode == "paired" else self._degraded(batch)
        if self.net_config.flow_steps:
            return self._flow_step(source, target, ctx)
        fake = ctx.nets["translator"](source)
        l1 = (fake - target).abs().float().mean()
        loss, logs = l1, {"l1": l1.detach()}
        if "critic_target" in self.modules_:
            d_loss = _critic_loss(ctx.nets["critic_target"], target, fake.detach())
            ctx.update("critics", d_loss)
            with ctx.frozen("critic_target") as critic:
                loss = loss + self.options.adversarial * _fool(critic, fake)
            logs["d_loss"] = d_loss.detach()
        ctx.update("translator", loss)
        return {"loss": loss.detach(), **logs}

    def _flow_step(
        self, source: torch.Tensor, target: torch.Tensor, ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        """The flow's estimate of the target from a point of the noised path from the
        (first) input to the target (see ``radsynth.models.translator``): half the samples
        at t = 0, the rest at a uniform time; scored by L1 as pix2pix is."""
        b = source.shape[0]
        t = torch.rand(b, device=source.device) * (torch.rand(b, device=source.device) < 0.5)
        start, tt = source[:, :1], t.view(-1, 1, 1, 1)
        noise = FLOW_NOISE * (tt * (1 - tt)).sqrt() * torch.randn_like(start)
        point = start + tt * (target - start) + noise
        l1 = (ctx.nets["translator"](source, point=point, t=t) - target).abs().float().mean()
        ctx.update("translator", l1)
        return {"loss": l1.detach(), "l1": l1.detach()}

    def _degraded(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(degraded, clean) in [-1, 1]: noise per modality, or a drawn resolution loss."""
        scale = self.to_hu_scale[batch["index"].cpu()].to(batch["image"].device)
        clean = ((batch["image"] + 1) / 2 * scale[:, :1, None, None] + scale[:, 1:, None, None]).clamp(0, 1)
        clean = random_crops(clean, self.options.patch)
        b = clean.shape[0]
        if self.options.mode == "sr":
            factors = torch.randint(0, len(self.options.sr_factors), (b,)).tolist()
            degraded = torch.cat(
                [
                    lower_resolution(clean[i : i + 1], self.options.sr_factors[f])
                    for i, f in enumerate(factors)
                ]
            )
        else:
            ct = torch.tensor([m == "CT" for m in batch["modality"]], device=clean.device).view(-1, 1, 1, 1)
            sigma = uniform(*self.options.mr_sigma, b, clean.device)
            photons = torch.exp(
                uniform(*torch.tensor(self.options.ct_photons).log().tolist(), b, clean.device)
            )
            noisy_ct = poisson_gaussian(clean, photons, self.options.ct_sigma)
            degraded = torch.where(ct, noisy_ct, rician(clean, sigma))
        return to_model_range(degraded.clamp(0, 1)), to_model_range(clean)

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs (C, H, W), target (1, H, W)) in [-1, 1] of every complete pair."""
        sides = [*self.options.sources, self.options.target]
        by_key: dict[str, dict[int, Record]] = {}
        for r in self.data.records:
            side = next((i for i, wanted in enumerate(sides) if matches(r, wanted)), None)
            if side is not None:
                by_key.setdefault(pair_key(r), {})[side] = r
        pairs = []
        for found in by_key.values():
            if len(found) == len(sides):
                images = [read_unit_image(found[i].resolve(self.data.path)) for i in range(len(sides))]
                stacked = to_model_range(torch.from_numpy(np.stack(images)))
                pairs.append((stacked[:-1], stacked[-1:]))
        if not pairs:
            raise InvalidInput(
                "paired training found no record pairs matching options.source / options.target",
                self.data.path,
            )
        return pairs

    def _paired_batch(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Random aligned crops and flips of the pairs (as many as the batch holds): with a
        handful of pairs the same crop window must cut both images."""
        b = batch["image"].shape[0]
        crop = self.options.crop
        sources, targets = [], []
        for k in torch.randint(0, len(self.pairs), (b,)).tolist():
            pair = random_crops(torch.cat(self.pairs[k])[None], crop)[0]  # (C + 1, crop, crop): one window
            if torch.rand(()) < 0.5:
                pair = pair.flip(-1)
            sources.append(pair[:-1])
            targets.append(pair[-1:])
        return torch.stack(sources).to(self.device), torch.stack(targets).to(self.device)

    def _cycle_step(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """CycleGAN (Zhu et al. 2017, eq. 3): least-squares adversarial terms both ways,
        L1 cycle consistency (lambda = ``cycle_weight``) and identity (eq. 6 of §5.2)."""
        index = batch["index"].cpu()
        a = batch["image"][self.is_source[index].to(batch["image"].device)]
        b = batch["image"][self.is_target[index].to(batch["image"].device)]
        if len(a) == 0 or len(b) == 0:
            return {"loss": 0.0}
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        forward, backward = ctx.nets["translator"], ctx.nets["backward"]
        fake_b, fake_a = forward(a), backward(b)
        with ctx.frozen("critic_target") as critic_b, ctx.frozen("critic_source") as critic_a:
            adversarial = _fool(critic_b, fake_b, lsgan=True) + _fool(critic_a, fake_a, lsgan=True)
        cycle = (backward(fake_b) - a).abs().mean() + (forward(fake_a) - b).abs().mean()
        w = self.options
        g_loss = adversarial + w.cycle_weight * cycle
        if w.identity_weight:
            identity = (forward(b) - b).abs().mean() + (backward(a) - a).abs().mean()
            g_loss = g_loss + w.identity_weight * w.cycle_weight * identity
        logs = {}
        if w.structure_weight:
            structure = (mind(fake_b.float()) - mind(a.float())).abs().mean() + (
                mind(fake_a.float()) - mind(b.float())
            ).abs().mean()
            g_loss = g_loss + w.structure_weight * structure
            logs["structure"] = structure.detach()
        ctx.update("translator", g_loss)
        d_loss = _critic_loss(ctx.nets["critic_target"], b, fake_b.detach(), lsgan=True) + _critic_loss(
            ctx.nets["critic_source"], a, fake_a.detach(), lsgan=True
        )
        ctx.update("critics", d_loss)
        return {"loss": g_loss.detach(), "cycle": cycle.detach(), "d_loss": d_loss.detach(), **logs}

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        info = image_fields(self.config, self.data)
        info["translation"] = {
            "mode": self.options.mode,
            "source": dict(self.options.sources[0]),
            "target": dict(self.options.target),
        }
        if self.options.inputs:
            info["translation"]["inputs"] = [dict(i) for i in self.options.inputs]
        return {"config": {"translator": self.net_config.to_dict()}, "task_info": info}


def _last(logits: Any) -> torch.Tensor:
    """MONAI's PatchDiscriminator returns every layer's output; the last is the verdict."""
    return (logits[-1] if isinstance(logits, list | tuple) else logits).float()


def _critic_loss(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, lsgan: bool = False
) -> torch.Tensor:
    real_logits, fake_logits = _last(critic(real)), _last(critic(fake))
    if lsgan:  # least squares (Mao et al. 2017), as CycleGAN trains
        return ((real_logits - 1) ** 2).mean() + (fake_logits**2).mean()
    return torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()


def _fool(critic: nn.Module, fake: torch.Tensor, lsgan: bool = False) -> torch.Tensor:
    logits = _last(critic(fake))
    return ((logits - 1) ** 2).mean() if lsgan else -logits.mean()
