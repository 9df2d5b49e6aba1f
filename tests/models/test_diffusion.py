import pytest
import torch

from radsynth.models import Denoiser, NoiseConfig, NoiseSchedule

SCHEDULES = [
    NoiseConfig(),
    NoiseConfig(prediction="epsilon"),
    NoiseConfig(beta_schedule="cosine"),
    NoiseConfig(kind="rflow"),
]


def times(schedule: NoiseSchedule, batch: int) -> torch.Tensor:
    return schedule.sample_t(batch, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("config", SCHEDULES, ids=lambda c: f"{c.kind}-{c.prediction}-{c.beta_schedule}")
def test_exact_target_recovers_x0(config):
    schedule = NoiseSchedule(config)
    x0, noise = torch.rand(8, 4, 6, 6) * 2 - 1, torch.randn(8, 4, 6, 6)
    t = times(schedule, 8)
    x_t = schedule.add_noise(x0, noise, t)
    target = schedule.training_target(x0, noise, t)
    torch.testing.assert_close(schedule.predict_x0(x_t, target, t), x0, atol=2e-4, rtol=0)


def test_v_target_is_salimans_ho():
    schedule = NoiseSchedule(NoiseConfig(prediction="v"))
    x0, noise, t = torch.randn(2, 1, 3, 3), torch.randn(2, 1, 3, 3), torch.tensor([10, 900])
    alpha, sigma = (s.float().view(2, 1, 1, 1) for s in schedule.alpha_sigma(t))
    torch.testing.assert_close(schedule.training_target(x0, noise, t), alpha * noise - sigma * x0)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(alpha))  # variance preserving


def test_schedule_matches_diffusers_and_times_are_in_range():
    from diffusers import DDPMScheduler

    schedule = NoiseSchedule()
    reference = DDPMScheduler(**schedule.diffusers_config()).alphas_cumprod
    torch.testing.assert_close(schedule.alphas_cumprod.float(), reference)
    t = times(schedule, 1000)
    assert t.dtype == torch.long and t.min() >= 0 and t.max() < 1000
    flow_t = times(NoiseSchedule(NoiseConfig(kind="rflow")), 1000)
    assert flow_t.min() > 0 and flow_t.max() < 1


def test_denoiser_passes_model_time_and_context():
    seen = {}

    class Net(torch.nn.Module):
        def forward(self, x, timesteps, context):
            seen.update(t=timesteps, context=context)
            return x * 2

    flow = Denoiser(Net(), NoiseSchedule(NoiseConfig(kind="rflow")))
    context = torch.randn(1, 3, 4)
    out = flow(torch.ones(1, 1, 2, 2), torch.tensor([0.25]), context, None)
    assert torch.equal(out, torch.full((1, 1, 2, 2), 2.0))
    assert seen["t"].item() == 250.0 and seen["context"] is context
