"""Free-text prompt -> structured attributes, and what a model never saw in training.

:func:`parse_prompt` reads the facts a radiology caption states (modality, MR contrast,
anatomy, plane, CT window, finding, side, size; for a radiograph the view, and the
patient's age and sex) with common synonyms ("MRI", "T1w", "lung window", "mass",
"no tumour", "normal", "PA", "60-year-old man"). It is the inverse of
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

ATTRIBUTES = ("modality", "contrast", "anatomy", "plane", "window", "finding", "side", "view", "sex")


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
# A radiograph's projection (the values are DICOM View Position terms, PS3.3 C.8.11.5).
_VIEW = _table(
    {
        "PA": r"\bpa\b|\bpostero[\s-]*anterior\b",
        "AP": r"\bap\b|\bantero[\s-]*posterior\b",
        "lateral": r"\blateral\s+(?:view|projection|film|radiograph|chest)\b",
    }
)
# The patient's sex as DICOM Patient's Sex (M, F).
_SEX = _table(
    {
        "M": r"\b(?:man|men|male|boy|gentleman)\b",
        "F": r"\b(?:woman|women|female|girl|lady)\b",
    }
)
# One stated age ("60-year-old", "60 years", "aged 60", "60 yo", "18 months"), never one
# end of a range ("age 1-5 years" states no single age).
_AGE = re.compile(
    r"(?<![\d.-])(?:aged?\s+)?(\d{1,3})(?![\d.])\s*-?\s*"
    r"(?:(years?|yrs?|y/?o\b|months?)(?:[\s-]*old\b)?)"
    r"|\baged?\s+(\d{1,3})\b(?!\s*-\s*\d)"
)
# An age range a caption may state for a whole data set ("age 1-5 years"): both ends count
# as ages seen in training, though neither is one patient's age.
_AGE_RANGE = re.compile(r"\b(\d{1,3})\s*(?:-|to)\s*(\d{1,3})\s*years?\b")
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
    ``size_mm`` in mm, ``view`` a radiograph's projection ("PA", "AP", "lateral"),
    ``sex`` "M" or "F", ``age_years`` the patient's age (months as a fraction of a
    year). ``other_words`` are the content words no rule recognised.
    """

    modality: str | None = None
    contrast: str | None = None
    anatomy: str | None = None
    plane: str | None = None
    window: str | None = None
    finding: str | None = None
    side: str | None = None
    size_mm: float | None = None
    view: str | None = None
    sex: str | None = None
    age_years: float | None = None
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
    low = _lowered(text)
    spans: list[tuple[int, int]] = []
    window = _first(_WINDOW, low, spans)
    no_window = _blanked(low, spans)
    found = {
        "contrast": _first(_CONTRAST, low, spans),
        "modality": _first(_MODALITY, low, spans),
        "anatomy": _first(_ANATOMY, no_window, spans),
        "plane": _first(_PLANE, low, spans),
        "finding": _first(_FINDING, low, spans),
        "side": _first(_SIDE, low, spans),
        "view": _first(_VIEW, low, spans),
        "sex": _first(_SEX, low, spans),
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
    age = _age(low, spans)
    return PromptAttributes(
        window=window, size_mm=size, age_years=age, other_words=_leftover(low, spans), **found
    )


def named_anatomies(text: str) -> frozenset[str]:
    """Every anatomy ``text`` names (``parse_prompt`` keeps the first one only).

    >>> sorted(named_anatomies("enlarged heart on a chest X-ray, brain window aside"))
    ['chest', 'heart']
    """
    low = _lowered(text)
    windows: list[tuple[int, int]] = []
    _first(_WINDOW, low, windows)
    no_window = _blanked(low, windows)
    return frozenset(value for value, pattern in _ANATOMY if pattern.search(no_window))


def _lowered(text: str) -> str:
    if not isinstance(text, str):
        raise InvalidInput(f"prompt must be a string, got {type(text).__name__}")
    # "Mr Smith" / "Mr." is a title, not the MR modality (which captions write "MR" or "mr").
    return _TITLE_MR.sub(lambda m: " " * len(m.group()), text).lower()


def _blanked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with ``spans`` blanked: "brain window" names a CT window, not the anatomy."""
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _age(text: str, spans: list[tuple[int, int]]) -> float | None:
    """The first single age stated, in years (months / 12)."""
    m = _AGE.search(text)
    if m is None:
        return None
    spans.append(m.span())
    if m.group(3) is not None:
        return float(m.group(3))
    return float(m.group(1)) / (12.0 if m.group(2).startswith("month") else 1.0)


def _leftover(text: str, spans: list[tuple[int, int]]) -> tuple[str, ...]:
    words = (w for w in _WORD.findall(_blanked(text, spans)) if w not in _STOPWORDS)
    return tuple(dict.fromkeys(words))


@dataclass(frozen=True)
class PromptVocabulary:
    """What the training captions said: the values seen per attribute, every content word,
    and the ranges of sizes (mm) and ages (years; None: no age stated, or a card written
    before ages were read, so ages are not checked). Built from PHI-scrubbed captions;
    stored in cards."""

    modality: frozenset[str] = frozenset()
    contrast: frozenset[str] = frozenset()
    anatomy: frozenset[str] = frozenset()
    plane: frozenset[str] = frozenset()
    window: frozenset[str] = frozenset()
    finding: frozenset[str] = frozenset()
    side: frozenset[str] = frozenset()
    view: frozenset[str] = frozenset()
    sex: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    size_range_mm: tuple[float, float] | None = None
    age_range_years: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            f.name: sorted(getattr(self, f.name)) for f in fields(self) if f.name not in _RANGES
        }
        for name in _RANGES:
            value = getattr(self, name)
            d[name] = None if value is None else list(value)
        return d

    def domain(self) -> str:
        """What the captions showed, in words: "X-ray (DX) images of the chest"."""
        modalities = _either(
            f"{_MODALITY_NAMES[m]} ({m})" if m in _MODALITY_NAMES else m for m in sorted(self.modality)
        )
        anatomy = f" of the {_either(sorted(self.anatomy))}" if self.anatomy else ""
        return f"{modalities or 'images'} images{anatomy}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptVocabulary:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"PromptVocabulary: unknown key(s) {', '.join(map(repr, unknown))}")
        values: dict[str, Any] = {k: frozenset(v) for k, v in data.items() if k not in _RANGES}
        # a card written before views and sexes were read: its caption words say which it saw
        recovered = [parse_prompt(w) for w in sorted(values.get("words", ()))]
        for name in ("view", "sex"):
            values.setdefault(name, frozenset(v for a in recovered if (v := getattr(a, name)) is not None))
        ranges = {k: None if data.get(k) is None else (float(data[k][0]), float(data[k][1])) for k in _RANGES}
        return cls(**values, **ranges)


_RANGES = ("size_range_mm", "age_range_years")
_MODALITY_NAMES = {
    "DX": "X-ray",
    "MG": "mammography",
    "US": "ultrasound",
    "PT": "PET",
    "NM": "nuclear medicine",
}


def _either(values: Iterable[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    values = list(values)
    return " or ".join([", ".join(values[:-1]), values[-1]]) if len(values) > 1 else "".join(values)


def vocabulary_from_captions(captions: Iterable[str]) -> PromptVocabulary:
    """Summarise training captions (scrubbed first: the result goes into a card)."""
    seen: dict[str, set[str]] = {a: set() for a in (*ATTRIBUTES, "words")}
    sizes: list[float] = []
    ages: list[float] = []
    for caption in captions:
        caption = scrub_phi(caption)
        attrs = parse_prompt(caption)
        for a in ATTRIBUTES:
            if (value := getattr(attrs, a)) is not None:
                seen[a].add(value)
        seen["words"].update(_WORD.findall(caption.lower()))
        if attrs.size_mm is not None:
            sizes.append(attrs.size_mm)
        if attrs.age_years is not None:
            ages.append(attrs.age_years)
        ages.extend(float(end) for m in _AGE_RANGE.finditer(caption.lower()) for end in m.groups())
    return PromptVocabulary(
        **{k: frozenset(v) for k, v in seen.items()},
        size_range_mm=(min(sizes), max(sizes)) if sizes else None,
        age_range_years=(min(ages), max(ages)) if ages else None,
    )


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
    ages = vocabulary.age_range_years
    if attrs.age_years is not None and ages is not None and not ages[0] <= attrs.age_years <= ages[1]:
        terms.append(f"age {attrs.age_years:g} years (training {ages[0]:g}-{ages[1]:g} years)")
    terms.extend(f"word {w!r}" for w in attrs.other_words if w not in vocabulary.words)
    return terms
