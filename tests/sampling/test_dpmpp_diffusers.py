"""Our DPM-Solver++(2M) against diffusers' scheduler, its oracle: the same images to the bit
(it is written out so that sampling never imports diffusers: issue 25)."""

import pytest
import torch

from radsynth.models.diffusion import Cond, NoiseConfig, NoiseSchedule
from radsynth.sampling.samplers import sample_dpmpp_2m


class _Smooth:
    """A denoiser whose output depends on x and t, so every step's arithmetic shows."""

    def __init__(self, schedule: NoiseSchedule) -> None:
        self.schedule = schedule

    def __call__(self, x, t, context, mask):
        return torch.tanh(0.7 * x + t.float().view(-1, 1, 1, 1) / 500.0) * 0.9


def _diffusers(denoiser, x, steps):
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(
        **denoiser.schedule.diffusers_config(),
        algorithm_type="dpmsolver++",
        solver_order=2,
        lower_order_final=True,
        final_sigmas_type="zero",
        timestep_spacing="trailing",
    )
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        x = scheduler.step(denoiser(x, t.expand(x.shape[0]), None, None).to(x.dtype), t, x).prev_sample
    return x


@pytest.mark.parametrize("prediction", ["v", "epsilon"])
@pytest.mark.parametrize("beta_schedule", ["scaled_linear", "cosine", "linear"])
@pytest.mark.parametrize("steps", [1, 2, 7, 25])
def test_dpmpp_2m_is_diffusers_to_the_bit(prediction, beta_schedule, steps):
    schedule = NoiseSchedule(NoiseConfig(prediction=prediction, beta_schedule=beta_schedule))
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(steps))
    denoiser = _Smooth(schedule)
    assert torch.equal(sample_dpmpp_2m(denoiser, x, steps, Cond()), _diffusers(denoiser, x, steps))
