import pytest
import torch

from radsynth.errors import InvalidInput
from radsynth.sampling import ClassifierFreeGuidance


class CountingDenoiser:
    def __init__(self, inner):
        self.inner, self.schedule, self.batches = inner, inner.schedule, []

    def __call__(self, x_t, t, context, mask):
        self.batches.append(x_t.shape[0])
        return self.inner(x_t, t, context, mask)


def test_batched_guidance_equals_two_separate_forwards(denoiser, text_encoder):
    context, mask = text_encoder.encode(["axial chest CT", "axial brain MR", "axial head CT"])
    uncond = text_encoder.encode([""])
    x, t = torch.randn(3, 2, 8, 8), torch.tensor([999, 500, 20])
    counting = CountingDenoiser(denoiser)
    with torch.inference_mode():
        guided = ClassifierFreeGuidance(counting, uncond, scale=4.0)(x, t, context, mask)
        cond = denoiser(x, t, context, mask)
        free = denoiser(x, t, uncond[0].expand(3, -1, -1), uncond[1].expand(3, -1))
    assert counting.batches == [6]  # one forward of the doubled batch
    assert (cond - free).abs().max() > 1e-3  # the text matters, so the check has teeth
    torch.testing.assert_close(guided, free + 4.0 * (cond - free), atol=1e-5, rtol=1e-5)


def test_scale_one_is_the_conditional_model_in_one_pass(denoiser, text_encoder):
    context, mask = text_encoder.encode(["axial chest CT"])
    counting = CountingDenoiser(denoiser)
    x, t = torch.randn(1, 2, 8, 8), torch.tensor([400])
    with torch.inference_mode():
        out = ClassifierFreeGuidance(counting, text_encoder.encode([""]), 1.0)(x, t, context, mask)
        torch.testing.assert_close(out, denoiser(x, t, context, mask))
    assert counting.batches == [1]


def test_negative_scale_is_refused(denoiser, text_encoder):
    with pytest.raises(InvalidInput, match="guidance scale"):
        ClassifierFreeGuidance(denoiser, text_encoder.encode([""]), -1.0)


def test_guidance_interval_runs_the_conditional_half_alone_outside_it(denoiser, text_encoder):
    context, mask = text_encoder.encode(["axial chest CT", "axial brain MR"])
    uncond = text_encoder.encode([""])
    x = torch.randn(2, 2, 8, 8)
    counting = CountingDenoiser(denoiser)
    cfg = ClassifierFreeGuidance(counting, uncond, scale=4.0, interval=(0.3, 0.7))
    with torch.inference_mode():
        for step in (900, 500, 100):  # fractions 0.9 (outside), 0.5 (inside), 0.1 (outside)
            t = torch.full((2,), step)
            out = cfg(x, t, context, mask)
            cond = denoiser(x, t, context, mask)
            if step == 500:
                assert (out - cond).abs().max() > 1e-3  # guided: not the conditional output
            else:
                torch.testing.assert_close(out, cond)
    assert counting.batches == [2, 4, 2]


@pytest.mark.parametrize("interval", [(0.8, 0.2), (-0.1, 0.5), (0.5, 1.5)])
def test_a_guidance_interval_outside_zero_one_or_reversed_is_refused(denoiser, text_encoder, interval):
    with pytest.raises(InvalidInput, match="guidance interval"):
        ClassifierFreeGuidance(denoiser, text_encoder.encode([""]), 4.0, interval=interval)
