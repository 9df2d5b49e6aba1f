"""Text: prompt parsing, PHI scrubbing and text encoders (frozen MiniLM or learned).

Training tasks call ``build_text_encoder(config)`` (or construct ``MiniLMEncoder()`` /
``LearnedEncoder.from_captions(captions)``) and ``encoder.encode(captions) -> (tokens,
mask)``; anything written to a card or log goes through ``scrub_phi`` first.
"""

from radsynth.text.base import TextEncoder
from radsynth.text.learned import LearnedEncoder, build_vocab, tokenize
from radsynth.text.minilm import MINILM_ID, MiniLMEncoder
from radsynth.text.phi import REDACTED, scrub_phi
from radsynth.text.prompt import (
    PromptAttributes,
    PromptVocabulary,
    parse_prompt,
    unknown_terms,
    vocabulary_from_captions,
)
from radsynth.text.registry import ENCODERS, build_text_encoder

__all__ = [
    "ENCODERS",
    "MINILM_ID",
    "REDACTED",
    "LearnedEncoder",
    "MiniLMEncoder",
    "PromptAttributes",
    "PromptVocabulary",
    "TextEncoder",
    "build_text_encoder",
    "build_vocab",
    "parse_prompt",
    "scrub_phi",
    "tokenize",
    "unknown_terms",
    "vocabulary_from_captions",
]
