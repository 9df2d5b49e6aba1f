"""Noise, parameterisation and the one denoiser interface, kept apart from the networks.

Two families, chosen by :class:`NoiseConfig`:

- **VP diffusion** (Ho et al. 2020): ``x_t = alpha_t * x0 + sigma_t * eps`` with
  ``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)`` (DDPM eq. 4), ``t`` an integer
  step in ``[0, num_train_timesteps)``. The network predicts either ``eps`` or
  ``v = alpha_t * eps - sigma_t * x0`` (Salimans & Ho 2022, "Progressive Distillation",
  §4), from which ``x0 = alpha_t * x_t - sigma_t * v``.
- **Rectified flow** (Liu et al. 2023; Esser et al. 2024, §2): ``x_t = (1 - t) * x0 +
  t * eps`` with ``t`` in [0, 1] (1 = pure noise); the network predicts the velocity
  ``eps - x0``, and ``x0 = x_t - t * velocity``.

**Default: VP with v-prediction**, scaled-linear betas (0.00085 -> 0.012, the latent
diffusion schedule), 1000 steps. Why v: a few-step DDIM / DPM-Solver sampler spends its
first, decisive steps at low signal-to-noise, where an epsilon model's estimate
``x0 = (x_t - sigma_t * eps) / alpha_t`` divides the network's error by a tiny ``alpha_t``;
the v estimate ``alpha_t * x_t - sigma_t * v`` never amplifies it, so x0 is well
conditioned at every step (Salimans & Ho 2022, §4; Lin et al. 2024, "Common Diffusion
Noise Schedules and Sample Steps Are Flawed", who pair v with few-step samplers too).
Rectified flow is offered for comparison with the Euler sampler.

Losses and samplers see the network only through :class:`Denoiser`
(``denoiser(x_t, t, context, mask) -> raw output``) and its ``schedule``: they never ask
which network is inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from radsynth.models.config import Config, check

KINDS = ("vp", "rflow")
PREDICTIONS = ("v", "epsilon")
BETA_SCHEDULES = {"scaled_linear": "scaled_linear", "cosine": "squaredcos_cap_v2", "linear": "linear"}


@dataclass(frozen=True)
class NoiseConfig(Config):
    """Which noising process and what the network predicts.

    ``prediction`` applies to ``kind="vp"``; rectified flow always predicts velocity.
    ``beta_schedule`` is "scaled_linear" (betas linear in sqrt, Rombach et al. 2022),
    "cosine" (Nichol & Dhariwal 2021, eq. 17) or "linear" (Ho et al. 2020).
    """

    kind: str = "vp"
    prediction: str = "v"
    beta_schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    num_train_timesteps: int = 1000

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check(self.kind in KINDS, owner, "kind", f"must be one of {KINDS}, got {self.kind!r}")
        check(
            self.prediction in PREDICTIONS,
            owner,
            "prediction",
            f"must be one of {PREDICTIONS}, got {self.prediction!r}",
        )
        check(
            self.beta_schedule in BETA_SCHEDULES,
            owner,
            "beta_schedule",
            f"must be one of {tuple(BETA_SCHEDULES)}, got {self.beta_schedule!r}",
        )
        check(
            0 < self.beta_start < self.beta_end < 1,
            owner,
            "beta_start",
            "and beta_end need 0 < start < end < 1",
        )
        check(self.num_train_timesteps >= 2, owner, "num_train_timesteps", "must be >= 2")


def alphas_cumprod(config: NoiseConfig) -> torch.Tensor:
    """``abar_t = prod_{s<=t} (1 - beta_s)`` (DDPM eq. 4), (N,) float32, computed as diffusers'
    schedulers compute it (same dtype, same order of operations), so the solvers and the
    training loss agree to the bit without importing diffusers (seconds at start-up)."""
    n = config.num_train_timesteps
    if config.beta_schedule == "linear":
        betas = torch.linspace(config.beta_start, config.beta_end, n, dtype=torch.float32)
    elif config.beta_schedule == "scaled_linear":
        betas = torch.linspace(config.beta_start**0.5, config.beta_end**0.5, n, dtype=torch.float32) ** 2
    else:  # cosine: Nichol & Dhariwal 2021, eq. 17, betas capped at 0.999

        def abar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = torch.tensor(
            [min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)], dtype=torch.float32
        )
    return torch.cumprod(1.0 - betas, dim=0)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, ..., 1) broadcastable against ``like`` (B, C, *spatial)."""
    return values.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


class NoiseSchedule:
    """Forward process, training target and x0 recovery for one :class:`NoiseConfig`.

    Time ``t`` is a (B,) tensor: integer steps for VP, floats in [0, 1] for rectified flow.
    ``model_time(t)`` is what the network's timestep embedding receives (both on a
    0..1000 scale, so the sinusoidal embedding sees the same range either way).
    """

    def __init__(self, config: NoiseConfig | None = None) -> None:
        self.config = config or NoiseConfig()
        self.num_train_timesteps = self.config.num_train_timesteps
        if self.config.kind == "vp":
            self.alphas_cumprod = alphas_cumprod(self.config).double()  # (N,)

    @property
    def prediction_type(self) -> str:
        """diffusers' name for what the network predicts."""
        if self.config.kind == "rflow":
            return "flow_prediction"
        return "v_prediction" if self.config.prediction == "v" else "epsilon"

    def diffusers_config(self) -> dict:
        """Keyword arguments that configure a diffusers VP scheduler on this schedule."""
        c = self.config
        check(c.kind == "vp", "NoiseConfig", "kind", "is 'rflow': diffusers' VP schedulers do not apply")
        return {
            "num_train_timesteps": c.num_train_timesteps,
            "beta_start": c.beta_start,
            "beta_end": c.beta_end,
            "beta_schedule": BETA_SCHEDULES[c.beta_schedule],
            "prediction_type": self.prediction_type,
        }

    def sample_t(
        self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Training times, (B,): uniform steps for VP; logit-normal(0, 1) for rectified flow,
        which puts more weight on the middle times (Esser et al. 2024, §3.1, their best)."""
        if self.config.kind == "vp":
            return torch.randint(0, self.num_train_timesteps, (batch_size,), generator=generator).to(device)
        return torch.sigmoid(torch.randn(batch_size, generator=generator)).to(device)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Signal and noise scales at ``t``, (B,) each, float64."""
        if self.config.kind == "vp":
            abar = self.alphas_cumprod.to(t.device)[t.long()]
            return abar.sqrt(), (1 - abar).sqrt()
        t = t.double()
        return 1 - t, t

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = alpha_t * x0 + sigma_t * noise`` (DDPM eq. 4; rectified flow's straight line)."""
        alpha, sigma = (_expand(s, x0) for s in self.alpha_sigma(t))
        return alpha * x0 + sigma * noise

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network should output at ``add_noise(x0, noise, t)``: eps, v or velocity."""
        if self.config.kind == "rflow":
            return noise - x0
        if self.config.prediction == "epsilon":
            return noise
        alpha, sigma = (_expand(s, x0) for s in self.alpha_sigma(t))
        return alpha * noise - sigma * x0  # Salimans & Ho 2022, §4

    def predict_x0(self, x_t: torch.Tensor, output: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The clean-data estimate implied by a network ``output`` at ``(x_t, t)``."""
        alpha, sigma = (_expand(s, x_t) for s in self.alpha_sigma(t))
        if self.config.kind == "rflow":
            return x_t - sigma * output
        if self.config.prediction == "epsilon":
            return (x_t - sigma * output) / alpha
        return alpha * x_t - sigma * output

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        """What the network's timestep embedding sees: the step (VP) or ``1000 * t`` (flow)."""
        if self.config.kind == "vp":
            return t.float()
        return t.float() * self.num_train_timesteps


@dataclass(frozen=True)
class Cond:
    """Conditioning passed through samplers untouched: text tokens (B, T, D) and mask (B, T)."""

    context: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class DenoiserLike(Protocol):
    """What samplers and guidance need: a schedule and ``(x_t, t, context, mask) -> output``."""

    schedule: NoiseSchedule

    def __call__(
        self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None
    ) -> torch.Tensor: ...


class Denoiser(nn.Module):
    """Wraps a network so that losses and samplers see only ``denoiser(x_t, t, context, mask)``.

    The output is the network's raw prediction in the schedule's parameterisation
    (compare it with ``schedule.training_target``; turn it into x0 with
    ``schedule.predict_x0``). ``mask`` is accepted for the interface and ignored by MONAI's
    cross-attention, which has no key-padding mask; our text encoders zero padded tokens.
    """

    def __init__(self, network: nn.Module, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.network = network
        self.schedule = schedule

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.network(x_t, self.schedule.model_time(t), context)
