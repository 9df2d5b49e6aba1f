"""Samplers: pure functions with one signature,
``sample_<name>(denoiser, x_T, steps, cond, generators=None) -> x0``.

``denoiser`` is anything with a ``schedule`` and ``(x_t, t, context, mask) -> output``
(a ``radsynth.models.Denoiser`` or a ``ClassifierFreeGuidance`` around one); ``x_T`` is the
initial noise (B, C, *spatial), drawn per sample by the caller; ``generators`` (one per
sample) is for stochastic samplers, unused by the deterministic ones here. The network
output is cast back to ``x_T``'s dtype before each update, so the solver state stays in
float32 under bf16 autocast. DDIM and UniPC are diffusers' schedulers configured from the
denoiser's own schedule (``schedule.diffusers_config()``), a fresh one per call, so no
state survives between calls; DPM-Solver++(2M), the default, is written out here in
diffusers' arithmetic, so the default path never imports diffusers (issue 25).

The last step of every sampler lands exactly on t = 0 (alpha = 1, sigma = 0), so with an
exact model output the result is exactly x0: the tests check this with an oracle denoiser.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from radsynth.errors import InvalidInput
from radsynth.models.diffusion import Cond, DenoiserLike


def _check(denoiser: DenoiserLike, steps: int, kind: str) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise InvalidInput(f"steps must be a positive integer, got {steps!r}")
    if denoiser.schedule.config.kind != kind:
        raise InvalidInput(
            f"this sampler needs a {kind!r} schedule, the model uses {denoiser.schedule.config.kind!r}"
        )


def _run_diffusers(
    scheduler, denoiser: DenoiserLike, x: torch.Tensor, steps: int, cond: Cond
) -> torch.Tensor:
    with warnings.catch_warnings():  # diffusers calls np.array on a torch tensor: harmless, not ours
        warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
        scheduler.set_timesteps(steps, device=x.device)
    for t in scheduler.timesteps:
        out = denoiser(x, t.expand(x.shape[0]), cond.context, cond.mask).to(x.dtype)  # (B, C, ...)
        x = scheduler.step(out, t, x).prev_sample
    return x


def sample_ddim(
    denoiser: DenoiserLike,
    x_T: torch.Tensor,
    steps: int,
    cond: Cond,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """DDIM, deterministic (eta = 0; Song et al. 2021, eq. 12), "trailing" timesteps so the
    first step starts at t = T - 1 (Lin et al. 2024 show "leading" spacing never starts
    from pure noise), final alpha = 1."""
    from diffusers import DDIMScheduler

    _check(denoiser, steps, "vp")
    scheduler = DDIMScheduler(
        **denoiser.schedule.diffusers_config(),
        clip_sample=False,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    )
    return _run_diffusers(scheduler, denoiser, x_T, steps, cond)


def sample_dpmpp_2m(
    denoiser: DenoiserLike,
    x_T: torch.Tensor,
    steps: int,
    cond: Cond,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): second-order multistep in data prediction (Lu et al. 2022,
    "DPM-Solver++", Algorithm 2), first order on the last step, ending at sigma = 0.

    Written out here rather than run through diffusers (whose import costs seconds at
    start-up), in diffusers' float32 arithmetic and order of operations: its
    ``DPMSolverMultistepScheduler`` (dpmsolver++, order 2, midpoint, trailing spacing,
    final sigma 0) is the oracle it is tested against."""
    _check(denoiser, steps, "vp")
    schedule = denoiser.schedule
    timesteps, sigmas = _trailing_sigmas(schedule.alphas_cumprod.float(), steps)
    timesteps = timesteps.to(x_T.device)
    x, previous = x_T, None
    for i, t in enumerate(timesteps):
        out = denoiser(x, t.expand(x.shape[0]), cond.context, cond.mask).to(x.dtype)  # (B, C, ...)
        x0 = _data_prediction(schedule, out, x, sigmas[i])
        last = i == len(timesteps) - 1
        x = _dpmpp_update(x.float(), x0, None if last else previous, sigmas, i).to(x0.dtype)
        previous = x0
    return x


def _trailing_sigmas(abar: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ "Trailing" timesteps (Lin et al. 2024, Table 2: the first at t = N - 1) and their
    ``sigma = sqrt((1 - abar) / abar)``, with a final 0, (steps + 1,) float32."""
    n = len(abar)
    timesteps = np.arange(n, 0, -n / steps).round().astype(np.int64) - 1
    sigma = ((1 - abar) / abar) ** 0.5  # (N,) float32
    return torch.from_numpy(timesteps), torch.cat([sigma[timesteps], sigma.new_zeros(1)])


def _alpha_sigma(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The VP scales behind ``sigma = sigma_t / alpha_t``: ``alpha_t = 1 / sqrt(sigma^2 + 1)``."""
    alpha = 1 / ((sigma**2 + 1) ** 0.5)
    return alpha, sigma * alpha


def _data_prediction(schedule, out: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x0 from the network output at ``sigma`` (v: Salimans & Ho 2022, §4; epsilon: DDPM eq. 15)."""
    alpha_t, sigma_t = _alpha_sigma(sigma)
    if schedule.config.prediction == "epsilon":
        return (x - sigma_t * out) / alpha_t
    return alpha_t * x - sigma_t * out


def _dpmpp_update(
    x: torch.Tensor, x0: torch.Tensor, previous: torch.Tensor | None, sigmas: torch.Tensor, i: int
) -> torch.Tensor:
    """One DPM-Solver++ step from ``sigmas[i]`` to ``sigmas[i + 1]`` (Lu et al. 2022, eq. 9
    for first order; Algorithm 2's midpoint form with the last x0 ``previous`` for second)."""
    alpha_t, sigma_t = _alpha_sigma(sigmas[i + 1])
    alpha_s, sigma_s = _alpha_sigma(sigmas[i])
    lambda_t = torch.log(alpha_t) - torch.log(sigma_t)  # +inf at the final sigma = 0: exp(-h) = 0
    lambda_s = torch.log(alpha_s) - torch.log(sigma_s)
    h = lambda_t - lambda_s
    x_t = (sigma_t / sigma_s) * x - (alpha_t * (torch.exp(-h) - 1.0)) * x0
    if previous is None:
        return x_t
    alpha_r, sigma_r = _alpha_sigma(sigmas[i - 1])
    r0 = (lambda_s - (torch.log(alpha_r) - torch.log(sigma_r))) / h
    d1 = (1.0 / r0) * (x0 - previous)
    return x_t - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1


def sample_unipc(
    denoiser: DenoiserLike,
    x_T: torch.Tensor,
    steps: int,
    cond: Cond,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """UniPC: a second-order multistep predictor with the unified corrector UniC, which
    reuses the model output of the next step so the correction costs no extra forward
    (Zhao et al. 2023, "UniPC", Algorithms 1-2, B(h) = e^h - 1: "bh2"), in data
    prediction, first order on the last step, ending at sigma = 0."""
    from diffusers import UniPCMultistepScheduler

    _check(denoiser, steps, "vp")
    scheduler = UniPCMultistepScheduler(
        **denoiser.schedule.diffusers_config(),
        solver_order=2,
        predict_x0=True,
        solver_type="bh2",
        lower_order_final=True,
        final_sigmas_type="zero",
        timestep_spacing="trailing",
    )
    return _run_diffusers(scheduler, denoiser, x_T, steps, cond)


def sample_euler(
    denoiser: DenoiserLike,
    x_T: torch.Tensor,
    steps: int,
    cond: Cond,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """Euler on the rectified-flow ODE ``dx/dt = v(x, t)`` from t = 1 to 0 on a uniform
    grid (Liu et al. 2023, "Flow Straight and Fast", eq. 1); exact for straight paths."""
    _check(denoiser, steps, "rflow")
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    x = x_T
    for t, t_next in zip(ts[:-1], ts[1:], strict=True):
        v = denoiser(x, t.to(x).expand(x.shape[0]), cond.context, cond.mask).to(x.dtype)  # (B, C, ...)
        x = x + float(t_next - t) * v
    return x


Sampler = Callable[..., torch.Tensor]
SAMPLERS: dict[str, Sampler] = {
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
    "unipc": sample_unipc,
    "euler": sample_euler,
}
DEFAULT_SAMPLER = {"vp": "dpmpp_2m", "rflow": "euler"}


def get_sampler(name: str) -> Sampler:
    """The sampler called ``name`` (``SAMPLERS``), or ``InvalidInput`` listing the choices."""
    if name not in SAMPLERS:
        raise InvalidInput(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return SAMPLERS[name]
