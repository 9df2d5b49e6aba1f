"""Free-text prompt -> structured attributes, and what a model never saw in training.

:func:`parse_prompt` reads the facts a radiology caption states (modality, MR contrast,
anatomy, plane, CT window, finding, side, size) with common synonyms ("MRI", "T1w",
"lung window", "mass", "no tumour", "normal"). It is the inverse of
``radsynth.data.describe`` for the demo captions and tolerant of free text otherwise.

:func:`vocabulary_from_captions` summarises the training captions, and
:func:`unknown_terms` lists what a prompt asks for outside it, so generation can still run
but warn "low confidence" and say why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.text.phi import scrub_phi

ATTRIBUTES = ("modality", "contrast", "anatomy", "plane", "window", "finding", "side")


def _table(entries: dict[str, str]) -> list[tuple[str, re.Pattern[str]]]:
    return [(value, re.compile(pattern)) for value, pattern in entries.items()]


# Values are DICOM modality codes (as radsynth.io.Image.modality uses them).
_MODALITY = _table(
    {
        "CT": r"\bct\b|\bcta\b|computed tomography|\bcat scan",
        "MR": r"\bmri?\b|magnetic resonance|\bmra\b",
        "DX": r"\bx-?rays?\b|\bradiograph\w*|\bcxr\b|\bplain films?\b|\bdx\b|\bcr\b",
        "MG": r"\bmammogra\w*",
        "US": r"\bultrasound\b|\bsonogra\w*|\bechocardiogra\w*",
        "PT": r"\bpet\b",
        "NM": r"\bscintigra\w*|\bspect\b",
    }
)
# MR contrast, most specific first ("t1 post contrast" before "t1", "t2 flair" before "t2").
_CONTRAST = _table(
    {
        "T1C": r"\bt1[\s-]*(?:ce|c|\+\s*c|gd|gad\w*|post[\s-]*contrast)\b"
        r"|\b(?:post[\s-]*contrast|contrast[\s-]*enhanced)\s+t1\w*",
        "FLAIR": r"\b(?:t2[\s-]*)?flair\b",
        "T1": r"\bt1(?:[\s-]*w(?:eighted)?)?\b",
        "T2": r"\bt2(?:[\s-]*w(?:eighted)?)?\b|\bt2\*",
        "PD": r"\bpd(?:[\s-]*w(?:eighted)?)?\b|\bproton[\s-]+density(?:[\s-]+weighted)?",
    }
)
_ANATOMY = _table(
    {
        "brain": r"\bbrain\b|\bcerebr\w*|\bintracranial\b|\bhemispheres?\b|\bcortex\b|\bventricles?\b",
        "head": r"\bhead\b|\bskull\b|\bcrani\w*",
        "chest": r"\bchest\b|\bthora\w*|\blungs?\b|\bpulmonary\b|\bcxr\b|\bmediastin\w*",
        "breast": r"\bbreasts?\b|\bmammar\w*|\bmammogra\w*",
        "abdomen": r"\babdom\w*|\bliver\b|\bhepatic\b|\bkidneys?\b|\brenal\b|\bpancrea\w*",
        "pelvis": r"\bpelv\w*|\bprostate\b|\bbladder\b",
        "spine": r"\bspin(?:e|al)\b|\bvertebra\w*|\blumbar\b",
        "knee": r"\bknees?\b",
        "heart": r"\bheart\b|\bcardiac\b",
    }
)
_PLANE = _table(
    {"axial": r"\baxial\b|\btrans(?:verse|axial)\b", "coronal": r"\bcoronal\b", "sagittal": r"\bsagittal\b"}
)
# Keys are radsynth.data.normalise.WINDOWS names.
_WINDOW = _table(
    {
        "lung": r"\b(?:lung|pulmonary|parenchyma\w*)[\s-]+windows?\b",
        "soft_tissue": r"\b(?:soft[\s-]*tissue|mediastin\w*|abdominal)[\s-]+windows?\b",
        "bone": r"\bbone[\s-]+windows?\b",
        "brain": r"\bbrain[\s-]+windows?\b",
        "subdural": r"\bsubdural[\s-]+windows?\b",
    }
)
_ABNORMAL = r"(?:tumou?rs?|lesions?|mass(?:es)?|abnormalit(?:y|ies)|findings?|nodules?|pathology|disease)"
_FINDING = _table(
    {
        "none": rf"\b(?:no|without|free of|negative for)\s+(?:[a-z-]+\s+){{0,2}}?{_ABNORMAL}\b"
        r"|\btumou?r[\s-]*free\b|\bnormal\b|\bunremarkable\b|\bhealthy\b",
        "tumour": r"\btumou?rs?\b|\bmass(?:es)?\b|\bneoplas\w*|\bcancers?\b|\bcarcinoma\w*|\bmalignan\w*"
        r"|\bgliom\w*|\bmetasta\w*",
        "lesion": r"\blesions?\b",
        "nodule": r"\bnodul\w*",
        "fracture": r"\bfractur\w*",
        "haemorrhage": r"\bha?emorrha\w*|\bbleed\w*|\bhaematoma\b|\bhematoma\b",
        "infarct": r"\binfarct\w*|\bstroke\b|\bischa?emi\w*",
        "effusion": r"\beffusions?\b",
        "pneumothorax": r"\bpneumothora\w*",
    }
)
_SIDE = _table({"bilateral": r"\bbilateral\w*|\bboth sides\b", "right": r"\bright\b", "left": r"\bleft\b"})
_TITLE_MR = re.compile(r"\bMr\.|\bMr(?=\s+[A-Z\[])")
_SIZE = re.compile(r"\b(\d+(?:\.\d+)?)\s*(mm|cm)\b")
_WORD = re.compile(r"[a-z][a-z0-9']*")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """a an the of in on at to for and or with by from as is are be this that there here image images
        slice slices scan scans study view showing shows show shown visible seen demonstrating please
        generate synthetic weighted window windows""",
    )
)


@dataclass(frozen=True)
class PromptAttributes:
    """The facts a prompt states; None where it says nothing.

    ``modality`` is a DICOM code ("CT", "MR", "DX", ...), ``window`` a CT window name
    ("lung", "soft_tissue", ...), ``finding`` "none" for an explicitly normal image,
    ``size_mm`` in mm. ``other_words`` are the content words no rule recognised.
    """

    modality: str | None = None
    contrast: str | None = None
    anatomy: str | None = None
    plane: str | None = None
    window: str | None = None
    finding: str | None = None
    side: str | None = None
    size_mm: float | None = None
    other_words: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["other_words"] = list(self.other_words)
        return d


def _first(table: list[tuple[str, re.Pattern[str]]], text: str, spans: list[tuple[int, int]]) -> str | None:
    """The value whose pattern matches earliest in ``text`` (ties: table order)."""
    best: tuple[int, int, str, re.Match[str]] | None = None
    for rank, (value, pattern) in enumerate(table):
        m = pattern.search(text)
        if m and (best is None or (m.start(), rank) < best[:2]):
            best = (m.start(), rank, value, m)
    if best is None:
        return None
    for _, pattern in table:  # every synonym counts as recognised, not only the winner
        spans.extend(m.span() for m in pattern.finditer(text))
    return best[2]


def parse_prompt(text: str) -> PromptAttributes:
    """Structured attributes of a free-text prompt.

    >>> parse_prompt("axial chest CT, lung window, mid thorax, tumour in the right lung, 23 mm").finding
    'tumour'
    """
    if not isinstance(text, str):
        raise InvalidInput(f"prompt must be a string, got {type(text).__name__}")
    # "Mr Smith" / "Mr." is a title, not the MR modality (which captions write "MR" or "mr").
    low = _TITLE_MR.sub(lambda m: " " * len(m.group()), text).lower()
    spans: list[tuple[int, int]] = []
    window = _first(_WINDOW, low, spans)
    # "brain window" names a CT window, not the anatomy: blank windows out before anatomy.
    no_window = low
    for start, end in spans:
        no_window = no_window[:start] + " " * (end - start) + no_window[end:]
    found = {
        "contrast": _first(_CONTRAST, low, spans),
        "modality": _first(_MODALITY, low, spans),
        "anatomy": _first(_ANATOMY, no_window, spans),
        "plane": _first(_PLANE, low, spans),
        "finding": _first(_FINDING, low, spans),
        "side": _first(_SIDE, low, spans),
    }
    if re.search(r"\bUS\b", text) and found["modality"] is None:  # "US" only in capitals: not the pronoun
        found["modality"] = "US"
        spans.extend(m.span() for m in re.finditer(r"\bUS\b", text))
    if found["modality"] is None and found["contrast"] is not None:
        found["modality"] = "MR"  # a T1/T2/PD/FLAIR contrast only exists in MR
    size = None
    if m := _SIZE.search(low):
        size = float(m.group(1)) * (10.0 if m.group(2) == "cm" else 1.0)
        spans.append(m.span())
    return PromptAttributes(window=window, size_mm=size, other_words=_leftover(low, spans), **found)


def _leftover(text: str, spans: list[tuple[int, int]]) -> tuple[str, ...]:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    words = (w for w in _WORD.findall(text) if w not in _STOPWORDS)
    return tuple(dict.fromkeys(words))


@dataclass(frozen=True)
class PromptVocabulary:
    """What the training captions said: the values seen per attribute, every content word,
    and the range of sizes (mm). Built from PHI-scrubbed captions; stored in cards."""

    modality: frozenset[str] = frozenset()
    contrast: frozenset[str] = frozenset()
    anatomy: frozenset[str] = frozenset()
    plane: frozenset[str] = frozenset()
    window: frozenset[str] = frozenset()
    finding: frozenset[str] = frozenset()
    side: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    size_range_mm: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            f.name: sorted(getattr(self, f.name)) for f in fields(self) if f.name != "size_range_mm"
        }
        d["size_range_mm"] = None if self.size_range_mm is None else list(self.size_range_mm)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptVocabulary:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"PromptVocabulary: unknown key(s) {', '.join(map(repr, unknown))}")
        values: dict[str, Any] = {k: frozenset(v) for k, v in data.items() if k != "size_range_mm"}
        size = data.get("size_range_mm")
        return cls(**values, size_range_mm=None if size is None else (float(size[0]), float(size[1])))


def vocabulary_from_captions(captions: Iterable[str]) -> PromptVocabulary:
    """Summarise training captions (scrubbed first: the result goes into a card)."""
    seen: dict[str, set[str]] = {a: set() for a in (*ATTRIBUTES, "words")}
    sizes: list[float] = []
    for caption in captions:
        caption = scrub_phi(caption)
        attrs = parse_prompt(caption)
        for a in ATTRIBUTES:
            if (value := getattr(attrs, a)) is not None:
                seen[a].add(value)
        seen["words"].update(_WORD.findall(caption.lower()))
        if attrs.size_mm is not None:
            sizes.append(attrs.size_mm)
    size_range = (min(sizes), max(sizes)) if sizes else None
    return PromptVocabulary(**{k: frozenset(v) for k, v in seen.items()}, size_range_mm=size_range)


def unknown_terms(attrs: PromptAttributes, vocabulary: PromptVocabulary) -> list[str]:
    """What the prompt asks for that training never showed, one phrase each, e.g.
    ``["modality 'US'", "anatomy 'knee'", "size 80 mm (training 5-45 mm)", "word 'fracture'"]``.

    Empty means the prompt stays inside the training captions; anything else should be
    reported as low confidence (the model will still generate, but from what it knows).
    """
    terms = [
        f"{a} {getattr(attrs, a)!r}"
        for a in ATTRIBUTES
        if getattr(attrs, a) is not None and getattr(attrs, a) not in getattr(vocabulary, a)
    ]
    if attrs.size_mm is not None:
        low_high = vocabulary.size_range_mm
        if low_high is None:
            terms.append(f"size {attrs.size_mm:g} mm (training captions state no size)")
        elif not low_high[0] <= attrs.size_mm <= low_high[1]:
            terms.append(f"size {attrs.size_mm:g} mm (training {low_high[0]:g}-{low_high[1]:g} mm)")
    terms.extend(f"word {w!r}" for w in attrs.other_words if w not in vocabulary.words)
    return terms
