"""Slice descriptions in plain radiology English, built only from known facts.

One fixed phrase order (plane, anatomy, modality and contrast, window, level, finding)
keeps captions consistent, which a text-conditioned generator learns faster than
free-form prose, and keeps them parseable back into facts for adherence tests.
Example: "axial chest CT, lung window, mid thorax, tumour in the right lung, 23 mm".
"""

from __future__ import annotations

from radsynth.data.normalise import WINDOW_WORDS

# Where a finding's side is said to be, per anatomy ("in the right lung").
_SIDE_PLACE = {"chest": "lung", "brain": "hemisphere", "breast": "breast"}


def finding_phrase(
    finding: str | None, anatomy: str, side: str | None = None, size_mm: float | None = None, word: str = ""
) -> str | None:
    """ "tumour in the right lung, 23 mm", "no lesion visible", or None when unknown.

    ``finding`` is "present" / "none" / None; ``word`` names it ("tumour", "lesion").
    """
    if finding is None:
        return None
    if finding == "none":
        return f"no {word} visible" if word else "no abnormality"
    text = word or "abnormality"
    if side:
        place = _SIDE_PLACE.get(anatomy)
        text += f" in the {side} {place}" if place else f" on the {side}"
    elif finding == "present":
        text += " present"
    if size_mm is not None:
        text += f", {round(size_mm):d} mm"
    return text


def describe(
    plane: str | None,
    modality: str,
    anatomy: str | None,
    contrast: str | None = None,
    window: str | None = None,
    level: str | None = None,
    finding: str | None = None,
) -> str:
    """Join the known facts: "<plane> <anatomy> <modality>, <window>, <level>, <finding>".

    MR puts the contrast before the anatomy ("axial T1-weighted brain MR"); CT names its
    window ("lung window"). Unknown parts are left out, never guessed.
    """
    mr_contrast = contrast if modality == "MR" else None
    parts = [" ".join(p for p in (plane, mr_contrast, anatomy, modality) if p)]
    if window:
        parts.append(WINDOW_WORDS.get(window, f"{window} window"))
    if level:
        parts.append(level)
    if finding:
        parts.append(finding)
    return ", ".join(parts)
