import pytest
import torch

from radsynth.errors import InvalidInput
from radsynth.text import LearnedEncoder, build_text_encoder, build_vocab, tokenize

CAPTIONS = [
    "axial chest CT, lung window, tumour in the right lung, 23 mm",
    "axial T1-weighted brain MR, lesion in the left hemisphere, 12 mm",
] * 2


def test_tokenize_splits_digits_and_punctuation():
    assert tokenize("T1-weighted, 23 mm") == ["t1", "-", "weighted", ",", "2", "3", "mm"]


def test_vocab_is_scrubbed_and_drops_rare_words():
    vocab = build_vocab([*CAPTIONS, "Mr Johnson chest CT"])
    assert "johnson" not in vocab and "chest" in vocab and vocab[:3] == ("[PAD]", "[UNK]", "[CLS]")


def test_learned_encoder_shapes_mask_and_gradients():
    encoder = LearnedEncoder.from_captions(CAPTIONS, dim=16, heads=2, max_length=12)
    tokens, mask = encoder.encode(["axial chest CT", "", "a very long prompt " * 10])
    assert tokens.shape == (3, 12, 16) and mask.shape == (3, 12)
    assert mask.sum(1).tolist() == [4, 1, 12]  # [CLS] + words; "" keeps [CLS]; truncated
    assert torch.all(tokens[~mask] == 0)  # padding is a zero "null" token
    tokens.sum().backward()
    assert encoder.token_embedding.weight.grad is not None


def test_learned_encoder_config_rebuilds_the_same_encoder():
    encoder = LearnedEncoder.from_captions(CAPTIONS, dim=16, heads=2, max_length=12)
    twin = build_text_encoder(encoder.config())
    twin.load_state_dict(encoder.state_dict())
    encoder.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(twin.encode(["brain MR"])[0], encoder.encode(["brain MR"])[0])
    assert twin.id == encoder.id


def test_bad_encoder_configs_fail_early():
    with pytest.raises(InvalidInput, match="'colour'"):
        build_text_encoder({"kind": "learned", "vocab": build_vocab(CAPTIONS), "colour": 1})
    with pytest.raises(InvalidInput, match="'clip'"):
        build_text_encoder({"kind": "clip"})
    with pytest.raises(InvalidInput, match="list of strings"):
        LearnedEncoder(build_vocab(CAPTIONS)).encode("a bare string")
