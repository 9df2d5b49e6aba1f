"""Samplers: pure functions with one signature,
``sample_<name>(denoiser, x_T, steps, cond, generators=None) -> x0``.

``denoiser`` is anything with a ``schedule`` and ``(x_t, t, context, mask) -> output``
(a ``radsynth.models.Denoiser`` or a ``ClassifierFreeGuidance`` around one); ``x_T`` is the
initial noise (B, C, *spatial), drawn per sample by the caller; ``generators`` (one per
sample) is for stochastic samplers, unused by the deterministic ones here. The network
output is cast back to ``x_T``'s dtype before each update, so the solver state stays in
float32 under bf16 autocast. The VP solvers are diffusers' schedulers configured from the
denoiser's own schedule (``schedule.diffusers_config()``), a fresh one per call, so no
state survives between calls.

The last step of every sampler lands exactly on t = 0 (alpha = 1, sigma = 0), so with an
exact model output the result is exactly x0: the tests check this with an oracle denoiser.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

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
    "DPM-Solver++", Algorithm 2), first order on the last step, ending at sigma = 0."""
    from diffusers import DPMSolverMultistepScheduler

    _check(denoiser, steps, "vp")
    scheduler = DPMSolverMultistepScheduler(
        **denoiser.schedule.diffusers_config(),
        algorithm_type="dpmsolver++",
        solver_order=2,
        lower_order_final=True,
        final_sigmas_type="zero",
        timestep_spacing="trailing",
    )
    return _run_diffusers(scheduler, denoiser, x_T, steps, cond)


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
