"""A patient education handout from a free-text radiology report.

:func:`extract_findings` reads the report's positive findings (negated and normal
statements dropped, NegEx-style: a cue such as "no" or "without" negates the findings that
follow it in the same clause, "has resolved" or "ruled out" those before it).
:func:`make_handout` draws each finding the shipped model can draw as synthetic pictures
(written marked, watermarked and audit-logged by :func:`write_batch`) and writes a
one-page ``handout.html`` (self-contained) and ``handout.pdf`` (one A4 page) that label
every picture SYNTHETIC and explain each finding in plain words.

Prompts are built only from the model's caption vocabulary (``radsynth.data.describe``),
never from the report's text, so nothing from the report reaches the images' metadata
or the audit log.
"""

from __future__ import annotations

import base64
import datetime
import html
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radsynth.data.describe import describe, finding_phrase
from radsynth.errors import InvalidInput
from radsynth.generate.outputs import check_output_folder, write_batch
from radsynth.io.atomic import atomic_path, write_text_atomic
from radsynth.text.prompt import parse_prompt

if TYPE_CHECKING:
    from radsynth.sampling.pipeline import GenerationPipeline

HTML_NAME = "handout.html"
PDF_NAME = "handout.pdf"
A4_INCHES = (8.27, 11.69)
PICTURE_PREFACE = "A computer-made picture, not your scan:"
DISCLAIMER = (
    "The pictures in this handout are SYNTHETIC: a computer program made them from words. "
    "They are not your images and they do not show your body. They only illustrate the kind "
    "of finding your report describes; size, shape and position will differ from yours. "
    "Please talk to your doctor about your own scan and what it means for you."
)

# Medical word -> plain words, and the finding kind where parse_prompt has none. Order
# matters: longer phrases first ("pleural effusion" before "effusion"). _ORGAN: the
# anatomy a word implies when the sentence names none.
_GLOSSARY: list[tuple[str, str, str]] = [
    (r"\bmass(?:es)?\b(?!\s+effect)", "a lump", "tumour"),
    (r"\bnodul(?:e|es|ar)\b", "a small lump", "nodule"),
    (r"\blesions?\b", "a lump or spot", "lesion"),
    (r"\btumou?rs?\b|\bneoplasms?\b", "a lump", "tumour"),
    (r"\bgliomas?\b", "a brain tumour", "tumour"),
    (r"\bmetasta\w*", "spread of cancer", "tumour"),
    (r"\bcarcinoma\w*|\bmalignan\w*|\bcancers?\b", "cancer", "tumour"),
    (r"\bpleural effusions?\b", "fluid around the lung", "effusion"),
    (r"\beffusions?\b", "fluid build-up", "effusion"),
    (r"\bpneumothora\w*", "air around the lung, pressing on it", "pneumothorax"),
    (r"\bfractur\w*", "a broken bone", "fracture"),
    (r"\bha?emorrha\w*|\bha?ematomas?\b|\bbleed(?:s|ing)?\b", "bleeding", "haemorrhage"),
    (r"\binfarct\w*|\bstroke\b", "an area damaged by a blocked blood supply, as in a stroke", "infarct"),
    (r"\bconsolidat\w*", "a part of the lung filled with fluid or infection", "consolidation"),
    (r"\batelecta\w*", "a part of the lung that is not fully inflated", "atelectasis"),
    (r"\bground[\s-]glass\b|\bopacit(?:y|ies)\b", "a hazy area", "opacity"),
    (r"\bemphysema\w*", "damaged air sacs in the lung", "emphysema"),
    (
        r"\blymphadenopathy\b|\benlarged (?:\w+ )?(?:lymph )?nodes\b",
        "swollen glands",
        "lymphadenopathy",
    ),
    (r"\bcysts?\b|\bcystic\b", "a fluid-filled sac", "cyst"),
    (r"\bcalcifi\w*", "a calcium deposit", "calcification"),
    (r"\bo?edema\b", "swelling", "oedema"),
    (r"\bcardiomegaly\b", "an enlarged heart", "cardiomegaly"),
    (r"\baneurysms?\b", "a bulge in a blood vessel", "aneurysm"),
    (r"\bhydrocephalus\b", "too much fluid in the spaces of the brain", "hydrocephalus"),
]
_GLOSSARY_RE = [(re.compile(p), plain, kind) for p, plain, kind in _GLOSSARY]
_ORGAN = {
    **dict.fromkeys(("effusion", "pneumothorax", "consolidation", "atelectasis", "emphysema"), "chest"),
    "hydrocephalus": "brain",
}
LUMPS = frozenset({"tumour", "lesion", "nodule"})  # one family when merging repeats

# Location words -> (name, anatomy they imply, part in plain words, side they imply).
# Chest lobes also say which level of the thorax a picture shows.
_LOCATION = [
    (r"\bupper lobes?\b|\bapex\b|\bapical\b", "upper lobe", "chest", "upper", None),
    (r"\bmiddle lobe\b", "middle lobe", "chest", "middle", "right"),
    (r"\blingula\w*", "lingula", "chest", "middle", "left"),
    (r"\blower lobes?\b|\blung bases?\b", "lower lobe", "chest", "lower", None),
    (r"\bfrontal\b", "frontal lobe", "brain", "front", None),
    (r"\bparietal\b", "parietal lobe", "brain", "upper back", None),
    (r"\btemporal\b", "temporal lobe", "brain", "side", None),
    (r"\boccipital\b", "occipital lobe", "brain", "back", None),
    (r"\bcerebell\w*", "cerebellum", "brain", "lower back", None),
]
_LOCATION_RE = [(re.compile(p), *rest) for p, *rest in _LOCATION]
_PART = {name: part for _, name, _, part, _ in _LOCATION}
_DIMENSIONS = re.compile(r"\b(\d+(?:\.\d+)?)((?:\s*(?:x|\u00d7|by)\s*\d+(?:\.\d+)?)+)\s*(mm|cm)\b")
_THORAX_LEVEL = {"upper": "upper thorax", "middle": "mid thorax", "lower": "lower thorax"}

# How the shipped demo model draws a lump, per anatomy (its captions' conventions: chest CT
# tumours on lung window, T1 brain MR lesions, breast MR lesions without side). The model's
# own vocabulary still has the last word (GenerationPipeline.check_prompt).
_DRAW: dict[str, dict[str, Any]] = {
    "chest": {"modality": "CT", "plane": "axial", "window": "lung", "word": "tumour", "sided": True},
    "brain": {"modality": "MR", "plane": "axial", "contrast": "T1-weighted", "word": "lesion", "sided": True},
    "breast": {"modality": "MR", "plane": "axial", "word": "lesion", "sided": False},
}
_SCAN = {"CT": "a CT scan", "MR": "an MRI scan", "DX": "an X-ray", "MG": "a mammogram", "US": "an ultrasound"}
_SIDE_PLACE = {"chest": "lung", "breast": "breast"}

# NegEx-style cues. Pseudo-negations ("no change in the mass") are blanked first.
_PSEUDO = re.compile(
    r"\bno (?:significant |interval |appreciable )*(?:change|increase|decrease|growth)\b"
    r"|\bwithout (?:significant |interval )*change\b|\bnot (?:significantly )?changed\b|\bnot only\b"
)
_DOUBT_PSEUDO = re.compile(
    r"\bcan ?not (?:be )?(?:excluded|ruled out|exclude|rule out)\b|\bnot (?:be )?(?:excluded|ruled out)\b"
    r"|\bcannot exclude\b"
)
_NEG_BEFORE = re.compile(
    r"\bno\b|\bnot\b|\bwithout\b|\bnegative for\b|\bfree of\b|\babsence of\b|\bresolution of\b|\bnever\b"
)
_NEG_AFTER = re.compile(
    r"\b(?:has |have )?resolved\b|\bruled out\b|\babsent\b|\bno longer\b|\bdisappeared\b"
    r"|\bnot (?:seen|identified|visuali[sz]ed|present|demonstrated|detected)\b"
)
_NORMAL = re.compile(r"\bunremarkable\b|\bnormal\b|\bwithin normal limits\b")
_DOUBT_BEFORE = re.compile(
    r"\bpossibl[ey]\b|\bprobabl[ey]\b|\blikely\b|\bmay\b|\bmight\b|\bcould\b|\bsuspicious for\b"
    r"|\bsuspected\b|\bsuggestive of\b|\bconcerning for\b|\bquestionable\b|\bequivocal\b"
    r"|\bindeterminate\b|\brule out\b|\bdifferential\b"
)
_DOUBT_AFTER = re.compile(r"\bis (?:suspected|likely|possible|questionable)\b|\?")
# Clause ends (a cue's scope stops there) and list items (a cue's scope runs across them
# unless an item starts a new statement: "No effusion, a 2 cm mass ...").
_CLAUSE = re.compile(
    r";|\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bexcept\b|\bapart from\b|\baside from\b"
    r"|\bwhereas\b|\botherwise\b|\bwhile\b|\bthere (?:is|are)\b"
)
_ITEM = re.compile(r",|\band\b|\bor\b|(?=\bwith\b)")
_FRESH = re.compile(r"\s*(?:a|an|the|this|these|there|with|new|\d+)\b")

# Report sections: the request and the method are context (modality, anatomy), never
# findings; a recommendation restates findings.
_SKIP_SECTIONS = re.compile(
    r"indication|history|reason|comparison|technique|procedure|protocol|dose|clinical|contrast|"
    r"exam|study|title|priors?|signed|dictated|recommend"
)
_CONTEXT_SECTIONS = re.compile(r"exam|study|title|technique|procedure|protocol")
# a header alone on its line is made only of section words ("FINDINGS", "REASON FOR EXAM")
_SECTION_LINE = re.compile(
    rf"(?:(?:findings|impression|conclusion|summary|opinion|result|report|for|of|and|&|/|"
    rf"{_SKIP_SECTIONS.pattern})\w*\s*)+"
)
_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z /&()-]{1,40}?)\s*:\s*(.*)$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")


@dataclass(frozen=True)
class Finding:
    """One positive finding of a report.

    ``kind`` is a finding name ("tumour", "nodule", "effusion", ...), ``term`` the report's
    own word ("mass"); ``modality`` (DICOM code) and ``anatomy`` come from the sentence or the
    report's header, None where the report does not say; ``location`` names a lobe or part
    ("upper lobe", "frontal lobe"); ``size_mm`` in mm; ``uncertain`` for "possible",
    "suspicious for", "cannot be excluded"; ``sentence`` is the report's sentence.
    """

    kind: str
    term: str
    plain: str
    modality: str | None
    anatomy: str | None
    side: str | None
    location: str | None
    size_mm: float | None
    uncertain: bool
    sentence: str


@dataclass(frozen=True)
class HandoutItem:
    """A finding as the handout shows it: pictures (``prompt`` set) or words only."""

    finding: Finding
    caption: str
    prompt: str | None = None
    images: tuple[Path, ...] = ()
    no_picture: str = ""  # why there is no picture ("" when drawn)


@dataclass(frozen=True)
class Handout:
    """What :func:`make_handout` wrote."""

    folder: Path
    html: Path
    pdf: Path
    items: tuple[HandoutItem, ...]

    @property
    def findings(self) -> list[Finding]:
        return [item.finding for item in self.items]

    @property
    def prompts(self) -> list[str]:
        return [item.prompt for item in self.items if item.prompt]

    @property
    def images(self) -> list[Path]:
        return [path for item in self.items for path in item.images]


# -- reading the report -----------------------------------------------------------------
def _sections(report: str) -> tuple[str, list[tuple[str, str]]]:
    """(context text from the title and exam lines, [(section, sentence), ...])."""
    context: list[str] = []
    sentences: list[tuple[str, str]] = []
    buffer: list[str] = []
    section, seen_body = "", False

    def flush() -> None:
        text = " ".join(buffer).strip()
        buffer.clear()
        if not text:
            return
        if section and _SKIP_SECTIONS.search(section.lower()):
            if _CONTEXT_SECTIONS.search(section.lower()):
                context.append(text)
            return
        sentences.extend((section, s) for s in _SENTENCE_END.split(text) if s.strip())

    for line in report.splitlines():
        stripped = line.strip()
        bare = stripped.rstrip(":").strip()
        if not stripped:
            flush()
            continue
        if bare.isupper() and _SECTION_LINE.fullmatch(bare.lower()):
            flush()
            section, seen_body = bare, True  # a header on its own line ("FINDINGS")
            continue
        if bare.isupper() and not seen_body and len(bare.split()) <= 10:
            context.append(bare)  # a title line ("CT CHEST WITH CONTRAST")
            continue
        if m := _HEADER.match(stripped):
            flush()
            section, stripped = m.group(1), m.group(2)
        if _BULLET.match(stripped):
            flush()
            stripped = _BULLET.sub("", stripped)
        seen_body = True
        buffer.append(stripped)
    flush()
    return " ".join(context), sentences


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda m: " " * len(m.group()), text)


def _cut(pattern: re.Pattern[str], text: str, start: int = 0) -> list[tuple[int, int]]:
    """``text`` cut at ``pattern``'s matches into (start, end) pieces, offsets from ``start``."""
    bounds = [0] + [p for m in pattern.finditer(text) for p in (m.start(), m.end())] + [len(text)]
    return [(start + a, start + b) for a, b in zip(bounds[::2], bounds[1::2], strict=True) if b > a]


def _mentions(sentence: str) -> list[dict[str, Any]]:
    """Every glossary term in ``sentence`` with its clause, list item, negation and doubt."""
    low = sentence.lower()
    doubt_pseudo = bool(_DOUBT_PSEUDO.search(low))
    scrubbed = _blank(_blank(low, _PSEUDO), _DOUBT_PSEUDO)
    found: list[dict[str, Any]] = []
    for c0, c1 in _cut(_CLAUSE, scrubbed):
        items = _cut(_ITEM, scrubbed[c0:c1], c0)
        terms = []
        for i, (a, b) in enumerate(items):
            for pattern, plain, kind in _GLOSSARY_RE:
                for m in pattern.finditer(scrubbed, a, b):
                    if not any(s <= m.start() < e for s, e, *_ in terms):
                        terms.append((m.start(), m.end(), i, plain, kind))
        if not terms:
            continue
        neg_from = _carry(scrubbed, items, _NEG_BEFORE)
        doubt_from = _carry(scrubbed, items, _DOUBT_BEFORE)
        for start, end, i, plain, kind in sorted(terms):
            a, b = items[i]
            negated = (
                (neg_from[i] is not None and neg_from[i] <= start)
                or _after(scrubbed, items, i, end, _NEG_AFTER)
                or bool(_NORMAL.search(scrubbed, a, b))
            )
            doubtful = (
                doubt_pseudo
                or (doubt_from[i] is not None and doubt_from[i] <= start)
                or _after(scrubbed, items, i, end, _DOUBT_AFTER)
            )
            found.append(
                {
                    "term": sentence[start:end],
                    "plain": plain,
                    "kind": kind,
                    "item": sentence[a:b],
                    "clause": sentence[c0:c1],
                    "clause_terms": len(terms),
                    "negated": negated,
                    "uncertain": doubtful,
                }
            )
    for mention in found:
        mention["sentence_terms"] = len(found)
    return found


def _carry(text: str, items: list[tuple[int, int]], cue: re.Pattern[str]) -> list[int | None]:
    """Per item, where a cue's forward scope starts in it (from a cue in it or carried over
    from an earlier item of the list), None where no cue reaches."""
    out, carried = [], False
    for i, (a, b) in enumerate(items):
        if i and _FRESH.match(text, a):
            carried = False
        m = cue.search(text, a, b)
        out.append(a if carried else (m.start() if m else None))
        carried = carried or m is not None
    return out


def _after(text: str, items: list[tuple[int, int]], i: int, end: int, cue: re.Pattern[str]) -> bool:
    """A backward-looking cue after the term: in its item, or in a later item of the same
    list before any item that starts a new statement."""
    if cue.search(text, end, items[i][1]):
        return True
    for a, b in items[i + 1 :]:
        if _FRESH.match(text, a):
            return False
        if cue.search(text, a, b):
            return True
    return False


def _location(text: str) -> tuple[str, str, str | None] | None:
    """(location, anatomy, side) of the first location word in ``text``."""
    low = text.lower()
    hits = [
        (m.start(), name, anatomy, side) for p, name, anatomy, _, side in _LOCATION_RE if (m := p.search(low))
    ]
    return min(hits, key=lambda h: h[0])[1:] if hits else None


def _size_mm(text: str) -> float | None:
    """A stated size in mm; of "2.3 x 1.9 cm" the largest dimension."""
    if m := _DIMENSIONS.search(text.lower()):
        values = [float(m.group(1)), *map(float, re.findall(r"\d+(?:\.\d+)?", m.group(2)))]
        return max(values) * (10.0 if m.group(3) == "cm" else 1.0)
    return parse_prompt(text).size_mm


def extract_findings(report: str) -> list[Finding]:
    """The report's positive findings, in report order, repeats merged (the impression
    restating a finding adds nothing). Negated, normal and resolved findings are dropped;
    sentences under INDICATION / HISTORY / COMPARISON / TECHNIQUE are not findings.

    >>> [(f.kind, f.side, f.location) for f in extract_findings(
    ...     "CT CHEST\\nFINDINGS: 2 cm mass in the right upper lobe. No pleural effusion.")]
    [('tumour', 'right', 'upper lobe')]
    """
    if not isinstance(report, str) or not report.strip():
        raise InvalidInput("the report is empty: paste or give the text of a radiology report")
    context_text, sentences = _sections(report)
    context = parse_prompt(context_text)
    findings: list[Finding] = []
    for section, sentence in sentences:
        section_facts = parse_prompt(section)
        sentence_facts = parse_prompt(sentence)
        for mention in _mentions(sentence):
            if mention["negated"]:
                continue
            item = parse_prompt(mention["item"])
            # side, place and size belong to the list item; the clause (or sentence) counts
            # only when this is its one finding ("In the right upper lobe, there is a mass")
            wider_text = (
                sentence
                if mention["sentence_terms"] == 1
                else mention["clause"]
                if mention["clause_terms"] == 1
                else mention["item"]
            )
            wider = parse_prompt(wider_text)
            place = _location(mention["item"]) or _location(wider_text)
            anatomy = (
                item.anatomy
                or (place[1] if place else None)
                or _ORGAN.get(mention["kind"])
                or sentence_facts.anatomy
                or section_facts.anatomy
                or context.anatomy
            )
            kind = parse_prompt(mention["term"]).finding
            findings.append(
                Finding(
                    kind=kind if kind not in (None, "none") else mention["kind"],
                    term=mention["term"],
                    plain=mention["plain"],
                    modality=item.modality or sentence_facts.modality or context.modality,
                    anatomy=anatomy,
                    side=item.side or wider.side or (place[2] if place else None),
                    location=place[0] if place else None,
                    size_mm=_size_mm(mention["item"]) or _size_mm(wider_text),
                    uncertain=mention["uncertain"],
                    sentence=sentence,
                )
            )
    return _merge(findings)


def positive_findings(report: str) -> list[Finding]:
    """:func:`extract_findings`, or a one-line error when the report states none."""
    findings = extract_findings(report)
    if not findings:
        raise InvalidInput(
            "the report states no positive finding (everything is negated or normal): nothing to illustrate"
        )
    return findings


def _family(kind: str) -> str:
    return "lump" if kind in LUMPS else kind


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per thing: a later mention of the same kind (lumps as one family), the
    same anatomy and no conflicting side or location fills in the earlier one."""
    kept: list[Finding] = []
    for f in findings:
        for k, g in enumerate(kept):
            same = _family(f.kind) == _family(g.kind) and f.anatomy == g.anatomy
            fits = all(
                a is None or b is None or a == b for a, b in ((f.side, g.side), (f.location, g.location))
            )
            if same and fits:
                kept[k] = replace(
                    g,
                    side=g.side or f.side,
                    location=g.location or f.location,
                    size_mm=g.size_mm or f.size_mm,
                    modality=g.modality or f.modality,
                    uncertain=g.uncertain and f.uncertain,
                )
                break
        else:
            kept.append(f)
    return kept


# -- prompts and plain words ------------------------------------------------------------
def finding_prompt(finding: Finding) -> str | None:
    """A prompt in the demo model's caption vocabulary, or None when it draws no such thing
    ("axial chest CT, lung window, upper thorax, tumour in the right lung, 23 mm")."""
    how = _DRAW.get(finding.anatomy or "")
    if finding.kind not in LUMPS or how is None:
        return None
    modality = finding.modality or how["modality"]
    if modality != how["modality"]:
        return None
    side = finding.side if how["sided"] and finding.side in ("left", "right") else None
    if how["sided"] and finding.side == "bilateral":
        return None  # one picture cannot show both sides
    part = _PART.get(finding.location or "")
    level = _THORAX_LEVEL.get(part or "") if finding.anatomy == "chest" else None
    phrase = finding_phrase("present", finding.anatomy, side, finding.size_mm, how["word"])
    return describe(
        how["plane"], modality, finding.anatomy, how.get("contrast"), how.get("window"), level, phrase
    )


def _where(finding: Finding) -> str:
    """ "the upper part of the right lung", "the front part of the brain, on the left side"."""
    side, anatomy = finding.side, finding.anatomy
    part = _PART.get(finding.location or "")
    both = side == "bilateral"
    if anatomy == "chest":
        lung = "both lungs" if both else f"the {side} lung" if side else "the lung"
        return f"the {part} part of {lung}" if part else lung if side else ""
    if anatomy == "brain":
        where = f"the {part} part of the brain" if part else "the brain" if side else ""
        return where + (", on both sides" if both else f", on the {side} side" if side else "")
    if side and anatomy in _SIDE_PLACE:
        return f"both {_SIDE_PLACE[anatomy]}s" if both else f"the {side} {_SIDE_PLACE[anatomy]}"
    return "on both sides" if both else f"on the {side} side" if side else ""


def _described(finding: Finding) -> str:
    """ "a possible lump (mass) about 2.3 cm across in the upper part of the right lung"."""
    words = finding.plain
    if finding.uncertain:
        article, _, rest = words.partition(" ")
        words = f"a possible {rest}" if article in ("a", "an") else f"possible {words}"
    if finding.term.lower() not in words:
        words += f" ({finding.term.lower()})"
    if finding.size_mm:
        size = f"{finding.size_mm / 10:g} cm" if finding.size_mm >= 10 else f"{finding.size_mm:g} mm"
        words += f" about {size} across"
    where = _where(finding)
    if where.endswith(("lung", "lungs")) and "the lung" in finding.plain:
        return words.replace("the lung", where, 1)  # "fluid around the right lung"
    return words + (f" {where}" if where.startswith("on ") else f" in {where}" if where else "")


def picture_caption(finding: Finding, prompt: str) -> str:
    """What a patient reads under the pictures (the scan type is the picture's, from the prompt)."""
    facts = parse_prompt(prompt)
    scan = _SCAN.get(facts.modality or "", "a scan")
    return (
        f"{PICTURE_PREFACE} {scan} of the {facts.anatomy} showing {_described(finding)}, "
        "like the one your report describes."
    )


def text_caption(finding: Finding) -> str:
    """What a patient reads for a finding shown in words only."""
    return (
        f"Your report describes {_described(finding)}. No picture is shown for this: the "
        "computer program that makes the pictures has not learned to draw it."
    )


# -- the handout ------------------------------------------------------------------------
def check_request(out_folder: str | Path, n_per_finding: int, overwrite: bool = False) -> Path:
    """The output folder, checked (nothing made) before any sampling; one-line errors."""
    if not isinstance(n_per_finding, int) or not 1 <= n_per_finding <= 6:
        raise InvalidInput(f"pictures per finding must be an integer in 1..6, got {n_per_finding!r}")
    folder = check_output_folder(out_folder, create=False)
    for name in () if overwrite else (HTML_NAME, PDF_NAME):
        if (folder / name).exists():
            raise InvalidInput(
                "would overwrite an earlier handout; choose another folder or --overwrite", folder / name
            )
    return folder


def make_handout(
    report: str,
    out_folder: str | Path,
    *,
    n_per_finding: int = 2,
    seed: int = 0,
    steps: int | None = None,
    weights: str | Path = "demo-ct-mr-64",
    pipeline: GenerationPipeline | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
) -> Handout:
    """Pictures for each drawable finding of ``report`` (``n_per_finding`` each, finding k
    from seed ``seed + k * n_per_finding``), written as marked PNGs under
    ``out_folder/finding-<k>/``, and ``handout.html`` + ``handout.pdf`` beside them.

    ``pipeline`` (a ``GenerationPipeline``) is loaded from ``weights`` when not given and
    only when some finding can be drawn; ``on_progress(done, total)`` counts images.
    """
    folder = check_request(out_folder, n_per_finding, overwrite)
    findings = positive_findings(report)
    prompts = [finding_prompt(f) for f in findings]
    if pipeline is None and any(prompts):
        from radsynth.generate.models import load_pipeline

        pipeline = load_pipeline(weights)
    drawn: list[tuple[str | None, str]] = []
    for f, prompt in zip(findings, prompts, strict=True):
        if prompt is None:
            drawn.append(
                (None, f"the model draws no {f.kind} on {f.modality or 'any'} {f.anatomy or 'anatomy'}")
            )
            continue
        if f.size_mm and pipeline.check_prompt(prompt):
            prompt = finding_prompt(replace(f, size_mm=None))  # the size is illustrative: drop it
        unknown = pipeline.check_prompt(prompt)
        drawn.append((None, "the model never saw " + "; ".join(unknown)) if unknown else (prompt, ""))
    total, done = n_per_finding * sum(1 for p, _ in drawn if p), 0
    items = []
    folder = check_output_folder(folder)
    for k, (f, (prompt, why)) in enumerate(zip(findings, drawn, strict=True)):
        if prompt is None:
            items.append(HandoutItem(f, text_caption(f), no_picture=why))
            continue
        images = pipeline.generate(
            prompt,
            n=n_per_finding,
            seed=seed + k * n_per_finding,
            steps=steps,
            on_progress=_offset(on_progress, done, total),
        )
        done += n_per_finding
        batch = write_batch(
            images,
            folder / f"finding-{k + 1}",
            "png",
            overwrite=overwrite,
            card_extra={"purpose": "patient education handout"},
        )
        items.append(HandoutItem(f, picture_caption(f, prompt), prompt, tuple(batch.files)))
    handout = Handout(folder, folder / HTML_NAME, folder / PDF_NAME, tuple(items))
    write_text_atomic(handout.html, render_html(handout))
    write_pdf(handout, handout.pdf)
    return handout


def _offset(on_progress: Callable[[int, int], None] | None, done: int, total: int):
    """One finding's ``on_progress(d, n)`` as the handout's ``(done + d, total)``."""
    return None if on_progress is None else lambda d, _n: on_progress(done + d, total)


def _facts() -> tuple[str, str]:
    from radsynth import __version__

    return datetime.date.today().isoformat(), __version__


def glossary(handout: Handout) -> list[tuple[str, str]]:
    """(report word, plain words) for each finding's term, once each."""
    pairs = {item.finding.term.lower(): item.finding.plain for item in handout.items}
    return list(pairs.items())


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;max-width:46em;margin:1.5em auto;
  padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}.lead{font-size:1.05em;color:#444}
.finding{border-top:1px solid #ccc;padding:.8em 0;display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
.pictures{display:flex;gap:.5em}.picture{position:relative;margin:0;width:150px;height:150px}
.picture img{width:150px;height:150px;display:block;background:#000}
.synthetic-label{position:absolute;left:0;right:0;bottom:6px;text-align:center;color:#fff;
  font-weight:700;letter-spacing:.08em;font-size:13px}
.synthetic-label span{background:#c00;padding:1px 6px;border-radius:3px}
.caption{flex:1;min-width:14em}.quote{color:#666;font-size:.9em}
.disclaimer{border:2px solid #c00;border-radius:6px;padding:.7em 1em;margin-top:1em;background:#fff5f5}
footer{color:#777;font-size:.85em;margin-top:1em}h2{font-size:1.15em;margin:1em 0 .3em}
.words{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}.words dt{font-weight:700}
.words dd{margin:0}
@page{size:A4;margin:12mm}
"""


def render_html(handout: Handout) -> str:
    """The handout as one self-contained HTML page (pictures inline as data URIs)."""
    date, version = _facts()
    e = html.escape
    parts = []
    for item in handout.items:
        figures = "".join(
            f'<figure class="picture"><img src="data:image/png;base64,'
            f'{base64.b64encode(path.read_bytes()).decode("ascii")}" alt="{e(_alt(item))}">'
            '<figcaption class="synthetic-label"><span>SYNTHETIC</span></figcaption></figure>'
            for path in item.images
        )
        pictures = f'<div class="pictures">{figures}</div>' if figures else ""
        parts.append(
            f'<section class="finding">{pictures}<div class="caption"><p>{e(item.caption)}</p>'
            f'<p class="quote">Your report says: &ldquo;{e(item.finding.sentence)}&rdquo;</p></div></section>'
        )
    words = "".join(f"<dt>{e(term)}</dt><dd>{e(plain)}</dd>" for term, plain in glossary(handout))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="radsynth {e(version)}">
<title>Understanding your scan report (with SYNTHETIC pictures)</title>
<style>{_CSS}</style></head>
<body>
<h1>Understanding your scan report</h1>
<p class="lead">This handout explains, in plain words, what your radiology report found. The
pictures are <strong>SYNTHETIC</strong>: made by a computer to show what such a finding can look
like. They are <strong>not your scans</strong>.</p>
{"".join(parts)}
<h2>Words in your report</h2>
<dl class="words">{words}</dl>
<div class="disclaimer" role="note"><strong>Please note.</strong> {e(DISCLAIMER)}</div>
<footer>Made on {e(date)} with radsynth {e(version)} (model-made pictures, marked synthetic in
each file).</footer>
</body></html>
"""


def _alt(item: HandoutItem) -> str:
    what = item.caption.removeprefix(PICTURE_PREFACE).strip()
    return f"SYNTHETIC computer-made picture, not your scan: {what}"


def _pixels(path: Path):
    """A written PNG as floats in [0, 1] (the marked pixels, 8- or 16-bit)."""
    from PIL import Image as PILImage

    with PILImage.open(path) as pic:
        array = np.asarray(pic, dtype=np.float32)
        top = 65535.0 if pic.mode.startswith("I") else 255.0
    return array / top


class _Page:
    """A top-down text cursor on an A4 matplotlib figure (units: figure fractions)."""

    def __init__(self, fig, left: float = 0.07, right: float = 0.93) -> None:
        self.fig, self.left, self.right, self.y = fig, left, right, 0.955
        self.width, self.height = fig.get_size_inches()

    def lines(self, text: str, size: float, width: float) -> list[str]:
        chars = int(width * self.width * 72 / (size * 0.6))  # ~0.6 em a character (DejaVu Sans)
        return textwrap.wrap(text, max(chars, 10)) or [""]

    def text_height(self, text: str, size: float, width: float) -> float:
        return len(self.lines(text, size, width)) * size * 1.3 / 72 / self.height

    def write(
        self,
        text: str,
        size: float = 10,
        x: float | None = None,
        width: float | None = None,
        gap=0.006,
        **style,
    ) -> None:
        """Draw ``text`` wrapped from the cursor down (``x``, ``width``: default the margins)."""
        x = self.left if x is None else x
        width = self.right - x if width is None else width
        self.fig.text(x, self.y, "\n".join(self.lines(text, size, width)), fontsize=size, va="top", **style)
        self.y -= self.text_height(text, size, width) + gap


CAPTION_PT = 9.5
PDF_MAX_PICTURED = 9  # more pictured findings than this: the rest are in the HTML only
_PICTURE_GAP_IN = 0.1  # between pictures, inches
_CARD_GAP = 0.02  # between columns and rows of findings, figure fraction


@dataclass(frozen=True)
class _Grid:
    """Where the pictured findings go: ``cols`` columns of cards, each with its caption
    above its pictures or ``beside`` them; ``side`` in inches; ``rows``: each row's height."""

    cols: int
    beside: bool
    side: float
    n: int
    rows: tuple[float, ...]

    def card(self, page: _Page) -> float:
        return (page.right - page.left - (self.cols - 1) * _CARD_GAP) / self.cols

    def pictures(self, page: _Page) -> float:
        return (self.n * self.side + (self.n - 1) * _PICTURE_GAP_IN) / page.width

    def text_width(self, page: _Page) -> float:
        return self.card(page) - self.pictures(page) - 0.015 if self.beside else self.card(page)


def _fit(page: _Page, items: list[HandoutItem], room: float, n: int, cols: int, beside: bool, side: float):
    grid = _Grid(cols, beside, side, n, ())
    if grid.pictures(page) > grid.card(page) or grid.text_width(page) < 0.3:  # captions at least ~2.5 in wide
        return None
    rows = []
    for r in range(0, len(items), cols):
        text = max(
            page.text_height(it.caption, CAPTION_PT, grid.text_width(page)) for it in items[r : r + cols]
        )
        rows.append(max(side / page.height, text) if beside else text + 0.012 + side / page.height)
    return replace(grid, rows=tuple(rows)) if sum(rows) + len(rows) * _CARD_GAP <= room else None


def _layout(page: _Page, items: list[HandoutItem], room: float, n: int) -> _Grid | None:
    """The grid that shows ``items`` (``n`` pictures each) largest in ``room`` (figure
    fraction), preferring fewer columns and captions above; None when none fits."""
    best = None
    for cols, beside in ((1, False), (1, True), (2, False), (2, True), (3, False)):
        for side in np.arange(3.0, 0.49, -0.05):
            grid = _fit(page, items, room, n, cols, beside, float(side))
            if grid is not None:
                if best is None or grid.side > best.side + 0.1:
                    best = grid
                break
    return best


def handout_figure(handout: Handout):
    """The one-page A4 handout as a matplotlib Figure (no pyplot: no global state).

    Findings with pictures fill a grid of 1-3 columns, whichever shows the pictures
    largest; with too many for one page the PDF shows one picture each, then at most
    ``PDF_MAX_PICTURED`` findings (the HTML has them all).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    date, version = _facts()
    fig = Figure(figsize=A4_INCHES)
    page = _Page(fig)
    page.write("Understanding your scan report", 20, weight="bold", gap=0.012)
    page.write(
        "This handout explains in plain words what your radiology report found. The pictures are "
        "SYNTHETIC: a computer made them to show what such a finding can look like. "
        "They are NOT your scans.",
        10.5,
        color="#333",
        gap=0.02,
    )
    drawn = [item for item in handout.items if item.images]
    words = [item for item in handout.items if not item.images]
    terms = "; ".join(f"{term} = {plain}" for term, plain in glossary(handout))
    width = page.right - page.left
    heading = page.text_height("x", 11, width) + 0.006
    # room kept under the pictures: the words-only list, the word list, the disclaimer box
    below = 0.19 + heading + page.text_height(terms, 9.5, width) + 0.006
    below += sum(page.text_height("\u2022 " + _described(it.finding), 9.5, width) + 0.006 for it in words)
    below += heading + 0.01 if words else 0.0
    shown, grid = drawn[:PDF_MAX_PICTURED], None
    n = max((len(it.images) for it in drawn), default=1)
    while shown and grid is None:  # fewer pictures, then fewer findings, until they fit
        grid = _layout(page, shown, page.y - below, n)
        if grid is not None and grid.side < 1.2 and n > 1:
            grid = _layout(page, shown, page.y - below, 1) or grid
        if grid is None:
            n, shown = (1, shown) if n > 1 else (n, shown[:-1])
    for r, height in enumerate(grid.rows if grid else ()):
        top = page.y
        for c, item in enumerate(shown[r * grid.cols : (r + 1) * grid.cols]):
            x = page.left + c * (grid.card(page) + _CARD_GAP)
            page.y = top
            if grid.beside:
                _pictures(fig, item.images[: grid.n], x, top, grid.side)
                page.write(
                    item.caption, CAPTION_PT, x=x + grid.pictures(page) + 0.015, width=grid.text_width(page)
                )
            else:
                page.write(item.caption, CAPTION_PT, x=x, width=grid.card(page), gap=0.012)
                _pictures(fig, item.images[: grid.n], x, page.y, grid.side)
        page.y = top - height - _CARD_GAP
    if len(drawn) > len(shown):
        page.write(f"Pictures of {len(drawn) - len(shown)} more finding(s) are in handout.html.", 9.5)
    if words:
        page.write(
            "Also in your report (no picture: the program has not learned to draw these):", 11, weight="bold"
        )
        for item in words:
            page.write("\u2022 " + _described(item.finding)[:1].upper() + _described(item.finding)[1:], 9.5)
        page.y -= 0.01
    page.write("Words in your report", 11, weight="bold")
    page.write(terms, 9.5, color="#333")
    fig.add_artist(
        Rectangle(
            (page.left, 0.06),
            width,
            0.115,
            transform=fig.transFigure,
            facecolor="#fff5f5",
            edgecolor="#c00",
            linewidth=1.5,
        )
    )
    page.y, page.left, page.right = 0.165, page.left + 0.015, page.right - 0.015
    page.write("Please note", 11, weight="bold", color="#c00", gap=0.008)
    page.write(DISCLAIMER, 9.5)
    fig.text(
        0.07,
        0.035,
        f"Made on {date} with radsynth {version}. Every picture is marked synthetic.",
        fontsize=8,
        color="#666",
    )
    return fig


def _pictures(fig, paths, x: float, top: float, side_in: float) -> None:
    """A row of square pictures from (x, top) down, each with a red SYNTHETIC label."""
    from matplotlib.patches import Rectangle

    width, height = fig.get_size_inches()
    w, h = side_in / width, side_in / height
    for j, path in enumerate(paths):
        ax = fig.add_axes((x + j * (w + _PICTURE_GAP_IN / width), top - h, w, h))
        ax.imshow(_pixels(path), cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
        ax.set_axis_off()
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor="#c00", lw=2))
        ax.text(
            0.5,
            0.04,
            "SYNTHETIC",
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            color="white",
            fontsize=max(6.0, min(12.0, 5 * side_in)),
            weight="bold",
            bbox={"facecolor": "#c00", "edgecolor": "none", "pad": 1.5},
        )


def write_pdf(handout: Handout, path: str | Path) -> Path:
    """The handout as a one-page A4 PDF, written atomically."""
    _, version = _facts()
    fig = handout_figure(handout)
    metadata = {
        "Title": "Understanding your scan report (SYNTHETIC pictures)",
        "Subject": "Patient education handout; the pictures are synthetic, not the patient's images",
        "Keywords": "SYNTHETIC",
        "Creator": f"radsynth {version}",
    }
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf", metadata=metadata)
    return Path(path)
