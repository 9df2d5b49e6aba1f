import logging

import numpy as np
import pytest
import torch

from radsynth.errors import CheckpointMismatch, InvalidInput, OutOfDomain
from radsynth.io.image import Image
from radsynth.models.card import Card
from radsynth.sampling import GenerationPipeline, generators, randn_per_sample
from radsynth.text import vocabulary_from_captions

PROMPT = "axial chest CT, lung window, tumour in the right lung"


@pytest.fixture
def pipeline(card):
    def build(kind, modules, **options):
        return GenerationPipeline.from_modules(modules, card(kind, sampling={"steps": 3}), **options)

    return build


def test_per_sample_noise_does_not_depend_on_the_batch():
    alone = randn_per_sample((2, 4, 4), generators([12]))
    batch = randn_per_sample((2, 4, 4), generators([10, 11, 12, 13]))
    assert torch.equal(alone[0], batch[2])


@pytest.mark.parametrize("kind", ["ldm", "gan", "vae"])
def test_image_i_is_the_same_alone_and_in_a_batch_of_four(kind, tiny_modules, pipeline):
    four = pipeline(kind, tiny_modules, batch_size=4).generate(PROMPT, n=4, seed=7, steps=3, guidance=3.0)
    third = pipeline(kind, tiny_modules, batch_size=1).generate(PROMPT, n=1, seed=9, steps=3, guidance=3.0)
    np.testing.assert_allclose(four[2].array, third[0].array, atol=1e-5)
    assert four[2].metadata["seed"] == third[0].metadata["seed"] == 9
    assert not np.allclose(four[0].array, four[1].array)


def test_generated_images_carry_geometry_modality_and_provenance(tiny_modules, pipeline):
    images = pipeline("ldm", tiny_modules).generate("Mr John Smith, " + PROMPT, n=2, seed=0)
    assert len(images) == 2 and all(isinstance(im, Image) for im in images)
    image = images[0]
    assert image.array.shape == (16, 16) and image.array.dtype == np.float32
    assert image.array.min() >= 0 and image.array.max() <= 1
    assert image.spacing == (0.7, 0.8) and image.modality == "CT"
    assert image.metadata["synthetic"] and image.metadata["steps"] == 3
    assert "John" not in image.metadata["prompt"]  # scrubbed before it is stored


def test_bf16_autocast_runs_stays_close_and_is_recorded(tiny_modules, pipeline):
    (fp32,) = pipeline("ldm", tiny_modules, precision="fp32").generate(PROMPT, n=1, seed=0)
    (bf16,) = pipeline("ldm", tiny_modules, precision="bf16").generate(PROMPT, n=1, seed=0)
    assert bf16.array.dtype == np.float32
    assert np.abs(fp32.array - bf16.array).mean() < 0.05
    assert (fp32.metadata["precision"], bf16.metadata["precision"]) == ("fp32", "bf16")


def test_auto_precision_is_resolved_and_unknown_ones_refused(tiny_modules, pipeline, monkeypatch):
    from radsynth.models import precision

    monkeypatch.setattr(precision, "fast_bf16", lambda device: True)
    assert pipeline("gan", tiny_modules, precision="auto").precision == "bf16"
    monkeypatch.setattr(precision, "fast_bf16", lambda device: False)
    assert pipeline("gan", tiny_modules, precision="auto").precision == "fp32"
    with pytest.raises(InvalidInput, match="unknown precision 'fp16'"):
        pipeline("gan", tiny_modules, precision="fp16")


def test_unseen_prompt_is_generated_with_low_confidence(tiny_modules, caplog, card, captions):
    vocab = vocabulary_from_captions(captions).to_dict()
    ldm = GenerationPipeline.from_modules(tiny_modules, card("ldm", vocabulary=vocab, sampling={"steps": 2}))
    with caplog.at_level(logging.WARNING):
        (image,) = ldm.generate("sagittal brain MR with a giraffe", n=1)
    assert image.metadata["low_confidence"] and "plane 'sagittal'" in image.metadata["unknown_terms"]
    assert "low confidence" in caplog.text
    assert not ldm.generate(PROMPT, n=1)[0].metadata["low_confidence"]


CXR_CAPTIONS = [
    "Chest X-ray, PA view, adult, 37 years, female. No finding.",
    "Chest X-ray, AP view, older adult, 70 years, male. Pneumonia.",
]


def test_a_prompt_naming_a_modality_never_learnt_is_refused_saying_what_the_model_draws(
    tiny_modules, card, captions
):
    cxr = vocabulary_from_captions(CXR_CAPTIONS).to_dict()
    xray = GenerationPipeline.from_modules(tiny_modules, card("ldm", vocabulary=cxr, sampling={"steps": 2}))
    with pytest.raises(
        OutOfDomain, match=r"draws X-ray \(DX\) images of the chest, not MR images of the brain"
    ):
        xray.generate("axial brain MR", n=1)
    demo = vocabulary_from_captions(captions).to_dict()
    ctmr = GenerationPipeline.from_modules(tiny_modules, card("ldm", vocabulary=demo, sampling={"steps": 2}))
    with pytest.raises(OutOfDomain, match="draws CT or MR images of the brain, chest or head, not DX images"):
        ctmr.generate("PA chest X-ray", n=1)
    with pytest.raises(OutOfDomain, match="draws X-ray .* not DX images of the knee"):
        xray.generate("AP X-ray of the knee", n=1)
    with pytest.raises(OutOfDomain, match="not MR images of the knee"):
        ctmr.generate("sagittal knee MR", n=1)
    (image,) = xray.generate("enlarged heart on a PA chest X-ray", n=1)  # a heart inside the chest
    assert image.modality == "DX"


def test_a_prompt_naming_no_modality_gets_the_one_the_model_learnt(tiny_modules, card):
    cxr = vocabulary_from_captions(CXR_CAPTIONS).to_dict()
    xray = GenerationPipeline.from_modules(tiny_modules, card("ldm", vocabulary=cxr, sampling={"steps": 2}))
    (image,) = xray.generate("PA view, 60-year-old man, pneumonia", n=1)
    assert image.modality == "DX" and not image.metadata["low_confidence"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 1001}, "at most 1000"),
        ({"n": 0}, "n must be"),
        ({"n": 10**6}, "n must be"),
        ({"steps": 0}, "steps must be"),
        ({"guidance": -2.0}, "guidance must be"),
        ({"seed": -1}, "seed must be"),
    ],
)
def test_bad_requests_fail_with_one_clear_line(tiny_modules, pipeline, kwargs, message):
    request = {"prompt": PROMPT, "n": 1, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        pipeline("ldm", tiny_modules).generate(**request)


def test_bad_cards_and_modules_are_named(tiny_modules, card, card_json):
    with pytest.raises(CheckpointMismatch, match="card task 'diffusion'"):
        GenerationPipeline.from_modules(
            tiny_modules, Card.from_dict({**card_json("ldm"), "task": "diffusion"})
        )
    with pytest.raises(CheckpointMismatch, match="no 'unet' module"):
        GenerationPipeline.from_modules(
            {"vae": tiny_modules["vae"]}, card("ldm"), text_encoder=tiny_modules["text_encoder"]
        )
    with pytest.raises(InvalidInput, match="'colour'"):
        bad = card_json("ldm")
        bad["config"]["unet"] = {**bad["config"]["unet"], "colour": 1}
        GenerationPipeline.from_modules(tiny_modules, Card.from_dict(bad))


@pytest.mark.parametrize("kind", ["ldm", "gan"])
def test_pipeline_loads_from_a_checkpoint_folder(kind, tiny_modules, card_json, tmp_path, pipeline):
    from radsynth.models.checkpoint import save_checkpoint

    needed = {"ldm": ("vae", "unet", "text_encoder"), "gan": ("generator", "text_encoder")}[kind]
    this_card = card_json(kind, sampling={"steps": 2})
    this_card["config"]["text_encoder"] = tiny_modules["text_encoder"].config()
    save_checkpoint(tmp_path / kind, {name: tiny_modules[name] for name in needed}, this_card)
    loaded = GenerationPipeline.from_checkpoint(tmp_path / kind).generate(PROMPT, n=2, seed=5)
    direct = pipeline(kind, tiny_modules).generate(PROMPT, n=2, seed=5, steps=2)
    np.testing.assert_allclose(loaded[1].array, direct[1].array, atol=1e-5)
    assert loaded[0].metadata["model_id"] == f"test-{kind}"


def test_checkpoint_that_does_not_fit_its_card_is_refused(tiny_modules, card_json, tmp_path):
    from radsynth.models.checkpoint import save_checkpoint

    this_card = card_json("vae")
    this_card["config"]["vae"] = {**this_card["config"]["vae"], "latent_channels": 3}
    save_checkpoint(tmp_path / "vae", {"vae": tiny_modules["vae"]}, this_card)
    with pytest.raises(CheckpointMismatch, match="shape"):
        GenerationPipeline.from_checkpoint(tmp_path / "vae")


def test_generation_leaves_training_modules_as_they_were(tiny_modules, pipeline):
    unet = tiny_modules["unet"].train()
    pipeline("ldm", tiny_modules).generate(PROMPT, n=1, steps=1)
    assert unet.training and all(p.requires_grad for p in unet.parameters())
    unet.eval()


def test_sampler_must_exist_and_fit_the_schedule(tiny_modules, card):
    with pytest.raises(InvalidInput, match="unknown sampler 'heun'"):
        GenerationPipeline.from_modules(tiny_modules, card("ldm", sampling={"sampler": "heun"}))
    with pytest.raises(InvalidInput, match="does not fit the 'vp' schedule"):
        GenerationPipeline.from_modules(tiny_modules, card("ldm", sampling={"sampler": "euler"}))


def test_ddim_and_rectified_flow_pipelines_generate(tiny_modules, card, card_json):
    ddim = GenerationPipeline.from_modules(tiny_modules, card("ldm", sampling={"sampler": "ddim"}))
    assert ddim.generate(PROMPT, n=1, steps=2)[0].metadata["sampler"] == "ddim"
    flow_card = card_json("ldm")
    flow_card["config"]["noise"] = {"kind": "rflow"}
    flow = GenerationPipeline.from_modules(tiny_modules, Card.from_dict(flow_card), device="cpu")
    assert flow.generator.defaults.sampler == "euler"
    assert flow.generate(PROMPT, n=1, steps=2)[0].array.shape == (16, 16)


def test_text_keys_and_values_are_projected_once_per_run_with_identical_images(tiny_modules, pipeline):
    from monai.networks.blocks.crossattention import CrossAttentionBlock

    from radsynth.sampling.inference import cached_context_projections

    block = next(m for m in tiny_modules["unet"].modules() if isinstance(m, CrossAttentionBlock))
    calls = []
    hook = block.to_k.register_forward_hook(lambda *_: calls.append(1))
    try:
        ldm = pipeline("ldm", tiny_modules)
        memoised = ldm.generate(PROMPT, n=2, seed=3, steps=4, guidance=3.0)
        with_memo = len(calls)
        calls.clear()
        with torch.inference_mode():
            z = torch.randn(2, 2, 8, 8)
            context = torch.randn(2, 5, tiny_modules["text_encoder"].dim)
            net = tiny_modules["unet"]
            plain = net(z, torch.tensor([10, 10]), context)
            with cached_context_projections([net]):
                twice = [net(z, torch.tensor([10, 10]), context) for _ in range(2)]
    finally:
        hook.remove()
    assert with_memo == 1  # guided steps share one (cond + uncond) context: one projection
    assert len(calls) == 2  # once without the memo, once for two forwards with it
    assert torch.equal(plain, twice[0]) and torch.equal(plain, twice[1])
    assert block.to_k.__class__ is torch.nn.Linear  # restored after the run
    again = pipeline("ldm", tiny_modules).generate(PROMPT, n=2, seed=3, steps=4, guidance=3.0)
    np.testing.assert_array_equal(memoised[0].array, again[0].array)


def test_guidance_interval_from_the_card_is_used_and_recorded(tiny_modules, card):
    ldm = GenerationPipeline.from_modules(
        tiny_modules, card("ldm", sampling={"steps": 4, "guidance_interval": [0.2, 0.8]})
    )
    limited = ldm.generate(PROMPT, n=1, seed=0, guidance=3.0)[0]
    assert limited.metadata["guidance_interval"] == [0.2, 0.8]
    ldm.generator.use_guidance_interval(None)
    full = ldm.generate(PROMPT, n=1, seed=0, guidance=3.0)[0]
    assert full.metadata["guidance_interval"] is None
    assert not np.array_equal(limited.array, full.array)
    with pytest.raises(CheckpointMismatch, match="guidance interval|unknown"):
        GenerationPipeline.from_modules(tiny_modules, card("ldm", sampling={"guidance_interval": [0.9, 0.1]}))


def test_a_card_without_pixel_spacing_gives_images_whose_spacing_writers_leave_out(tiny_modules, card):
    from radsynth.io.image import unit_spacing_assumed

    no_spacing = card("ldm", image={"size": [16, 16]}, sampling={"steps": 2})
    (image,) = GenerationPipeline.from_modules(tiny_modules, no_spacing).generate(PROMPT, n=1)
    assert image.spacing == (1.0, 1.0) and unit_spacing_assumed(image)
    (stated,) = GenerationPipeline.from_modules(tiny_modules, card("ldm", sampling={"steps": 2})).generate(
        PROMPT, n=1
    )
    assert not unit_spacing_assumed(stated)
