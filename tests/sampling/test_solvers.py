"""Sampler math checked against oracles: a denoiser that knows the answer must get it."""

import pytest
import torch

from radsynth.errors import InvalidInput
from radsynth.models import Cond, NoiseConfig, NoiseSchedule
from radsynth.sampling import sample_ddim, sample_dpmpp_2m, sample_euler, sample_unipc


def expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


class PointOracle:
    """Data is the single point x0: the exact denoiser's x0 estimate is x0 at every step."""

    def __init__(self, schedule: NoiseSchedule, x0: torch.Tensor) -> None:
        self.schedule, self.x0 = schedule, x0

    def __call__(self, x_t, t, context, mask):
        alpha, sigma = (expand(s, x_t) for s in self.schedule.alpha_sigma(t))
        noise = (x_t - alpha * self.x0) / sigma
        return self.schedule.training_target(self.x0, noise, t)


class GaussianOracle:
    """Data ~ N(mu, s^2) per pixel: E[x0 | x_t] is closed-form, and the probability-flow ODE
    keeps z = (x_t - alpha mu) / sqrt(alpha^2 s^2 + sigma^2) constant, so x_T maps to
    mu + s z_T exactly."""

    mu, s = 0.3, 0.5

    def __init__(self, schedule: NoiseSchedule) -> None:
        self.schedule = schedule

    def __call__(self, x_t, t, context, mask):
        x = x_t.double()
        alpha, sigma = (expand(v, x) for v in self.schedule.alpha_sigma(t))
        x0 = self.mu + alpha * self.s**2 / (alpha**2 * self.s**2 + sigma**2) * (x - alpha * self.mu)
        return self.schedule.training_target(x0, (x - alpha * x0) / sigma, t).float()

    def exact(self, x_T, t_T):
        alpha, sigma = self.schedule.alpha_sigma(t_T)
        return self.mu + self.s * (x_T.double() - alpha * self.mu) / (alpha**2 * self.s**2 + sigma**2).sqrt()


VP = [NoiseConfig(), NoiseConfig(prediction="epsilon"), NoiseConfig(beta_schedule="cosine")]


@pytest.mark.parametrize("sampler", [sample_ddim, sample_dpmpp_2m, sample_unipc])
@pytest.mark.parametrize("config", VP, ids=lambda c: f"{c.prediction}-{c.beta_schedule}")
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_vp_samplers_reconstruct_x0_from_pure_noise(sampler, config, steps):
    x0 = torch.rand(2, 4, 6, 6, generator=torch.Generator().manual_seed(1)) * 2 - 1
    oracle = PointOracle(NoiseSchedule(config), x0)
    x = sampler(oracle, torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(2)), steps, Cond())
    torch.testing.assert_close(x, x0, atol=2e-5, rtol=0)


def test_euler_reconstructs_x0_on_the_flow():
    x0 = torch.rand(2, 1, 4, 4, 4) * 2 - 1  # 3D latents: samplers are shape-agnostic
    oracle = PointOracle(NoiseSchedule(NoiseConfig(kind="rflow")), x0)
    torch.testing.assert_close(sample_euler(oracle, torch.randn_like(x0), 7, Cond()), x0, atol=1e-5, rtol=0)


def test_solvers_converge_to_the_gaussian_ode_solution():
    schedule = NoiseSchedule()
    oracle = GaussianOracle(schedule)
    x_T = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    exact = oracle.exact(x_T, torch.tensor([999]))
    error = {
        (f.__name__, n): (f(oracle, x_T, n, Cond()).double() - exact).abs().max().item()
        for f in (sample_ddim, sample_dpmpp_2m, sample_unipc)
        for n in (10, 50)
    }
    for name in ("sample_ddim", "sample_dpmpp_2m", "sample_unipc"):
        assert error[name, 50] < error[name, 10]
    assert error["sample_dpmpp_2m", 10] < error["sample_ddim", 10]  # second order pays off
    assert error["sample_dpmpp_2m", 50] < 0.1


def test_samplers_refuse_the_wrong_schedule_and_bad_steps():
    vp = PointOracle(NoiseSchedule(), torch.zeros(1, 1, 2, 2))
    flow = PointOracle(NoiseSchedule(NoiseConfig(kind="rflow")), torch.zeros(1, 1, 2, 2))
    with pytest.raises(InvalidInput, match="'rflow' schedule"):
        sample_euler(vp, torch.zeros(1, 1, 2, 2), 4, Cond())
    with pytest.raises(InvalidInput, match="'vp' schedule"):
        sample_ddim(flow, torch.zeros(1, 1, 2, 2), 4, Cond())
    with pytest.raises(InvalidInput, match="steps"):
        sample_dpmpp_2m(vp, torch.zeros(1, 1, 2, 2), 0, Cond())
