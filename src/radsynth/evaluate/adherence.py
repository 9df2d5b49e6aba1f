"""Text adherence: does a generated image show what its prompt asked for?

The attribute classifier (trained on real slices only) reads each generated image; its
answer is compared with what the prompt states, per attribute. Attributes the prompt does
not state are not scored.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from radsynth.text.prompt import parse_prompt

FINDINGS_PRESENT = ("tumour", "lesion", "mass", "nodule")


def prompt_attributes(prompt: str) -> dict[str, str | None]:
    """The classifier's attributes as the prompt states them (None: not stated)."""
    parsed = parse_prompt(prompt)
    finding = parsed.finding
    return {
        "modality": parsed.modality,
        "anatomy": parsed.anatomy,
        "finding": "absent" if finding == "none" else ("present" if finding in FINDINGS_PRESENT else None),
    }


def adherence(prompts: list[str], predicted: dict[str, list[str]]) -> dict[str, Any]:
    """Per attribute: accuracy over the images whose prompt states it, the count, and the
    confusion matrix as ``{asked: {read: count}}``."""
    return adherence_to([prompt_attributes(p) for p in prompts], predicted)


def adherence_to(asked: list[dict[str, str | None]], predicted: dict[str, list[str]]) -> dict[str, Any]:
    """:func:`adherence` against attributes known otherwise than by parsing the prompt
    (a real caption's structured labels, a report's curated index terms): ``asked[i]``
    holds what image i was asked to show (None or absent: not scored)."""
    report: dict[str, Any] = {}
    for name, reads in predicted.items():
        pairs = [(a.get(name), r) for a, r in zip(asked, reads, strict=True) if a.get(name) is not None]
        confusion: dict[str, Counter] = {}
        for want, got in pairs:
            confusion.setdefault(want, Counter())[got] += 1
        correct = sum(want == got for want, got in pairs)
        report[name] = {
            "accuracy": correct / len(pairs) if pairs else None,
            "n": len(pairs),
            "confusion": {k: dict(v) for k, v in sorted(confusion.items())},
        }
    return report
