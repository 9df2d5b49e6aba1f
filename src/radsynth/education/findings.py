"""A radiology report's positive findings, read NegEx-style.

A cue such as "no", "without", "clear of" or "free of" negates the findings that follow it
in the same clause, the whole list after it included ("clear of airspace disease,
pneumothorax, or effusion"); "has resolved" or "ruled out" negate those before it. As in
NegBio and the CheXpert labeler, a cue's scope ends at "but", "however", "given", a new
statement, and pseudo-negations ("no change in") negate nothing; "possible", "question of",
"versus" or "cannot be excluded" mark a finding uncertain. The vocabulary covers the chest
X-ray findings the IU curators index (``benchmarks/report_reader.py`` measures it against
their labels). Sentences under INDICATION / HISTORY / COMPARISON /
TECHNIQUE are context (modality, anatomy), never findings, and repeats (the impression
restating a finding) merge into one :class:`Finding`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.text.prompt import parse_prompt

# Medical word -> plain words, and the finding kind where parse_prompt has none. Order
# matters: longer phrases first ("pleural effusion" before "effusion"). _ORGAN: the
# anatomy a word implies when the sentence names none.
_GLOSSARY: list[tuple[str, str, str]] = [
    # a calcified nodule on a chest X-ray is most often an old granuloma
    (r"\b(?:calcified )?granulom\w*", "a small healed spot from an old infection", "granuloma"),
    (
        r"\bcalcified (?:\w+ )?(?:nodul\w*|densit\w*|foc\w*)",
        "a small spot of calcium, often from an old infection",
        "calcified nodule",
    ),
    (r"\bmass(?:es)?\b(?!\s+effect)", "a lump", "tumour"),
    # "nodular opacity" / "nodular density" describe a shadow's shape, not a nodule
    (r"\bnodular (?:\w+ )?opacit(?:y|ies)\b", "a hazy area", "opacity"),
    (r"\bnodular (?:\w+ )?densit(?:y|ies)\b", "an area that looks denser", "density"),
    (r"\bnodul(?:e|es|ar)\b", "a small lump", "nodule"),
    (r"\blesions?\b", "a lump or spot", "lesion"),
    (r"\btumou?rs?\b|\bneoplasms?\b", "a lump", "tumour"),
    (r"\bgliomas?\b", "a brain tumour", "tumour"),
    (r"\bmetasta\w*", "spread of cancer", "tumour"),
    (r"\bcarcinoma\w*|\bmalignan\w*|\bcancers?\b", "cancer", "tumour"),
    (r"\bpericardial effusions?\b", "fluid around the heart", "pericardial effusion"),
    (r"\bpleural (?:effusions?|fluid)\b", "fluid around the lung", "effusion"),
    (r"\beffusions?\b", "fluid build-up", "effusion"),
    (r"\bpneumothora\w*", "air around the lung, pressing on it", "pneumothorax"),
    (r"\bfractur\w*", "a broken bone", "fracture"),
    (r"\bha?emorrha\w*|\bha?ematomas?\b|\bbleed(?:s|ing)?\b", "bleeding", "haemorrhage"),
    (r"\binfarct\w*|\bstroke\b", "an area damaged by a blocked blood supply, as in a stroke", "infarct"),
    (r"\bpneumonia\w*", "a lung infection", "pneumonia"),
    (
        r"\bair ?space (?:disease|consolidation|process)\b|\binfiltrat\w*",
        "a part of the lung filled with fluid or infection",
        "airspace disease",
    ),
    (r"\bconsolidat\w*", "a part of the lung filled with fluid or infection", "consolidation"),
    (r"\batelecta\w*", "a part of the lung that is not fully inflated", "atelectasis"),
    (r"\bground[\s-]glass\b|\bopacit(?:y|ies)\b|\bopacifi\w*", "a hazy area", "opacity"),
    (r"\bsubcutaneous (?:\w+ )?emphysema\b", "air under the skin", "subcutaneous emphysema"),
    (
        r"\bemphysema\w*|\bcopd\b|\bchronic obstructive\b"
        r"|\bobstructive (?:lung|pulmonary|airways?) disease\b",
        "damaged air sacs in the lung",
        "emphysema",
    ),
    (
        r"\bhyper-?(?:infla|expan|aera)\w*|\bover-?(?:infla|expan)\w*",
        "lungs that hold more air than usual",
        "hyperinflation",
    ),
    (
        r"\blow (?:lung )?volumes?\b|\bhypo-?(?:infla|aera|expan)\w*|\b(?:poor|shallow|low) inspirat\w*"
        r"|\bvolumes are (?:\w+ )?low\b",
        "lungs not fully filled with air when the picture was taken",
        "low lung volumes",
    ),
    (r"\bscar\w*|\bcicatri\w*", "a scar", "scarring"),
    (
        r"\batheroscl\w*|\batherom\w*|\b(?:aortic|aorta|vascular|arterial)\s+(?:\w+\s+)?calcifi\w*"
        r"|\bcalcifi\w*\s+(?:(?:of|in)\s+)?(?:the\s+)?(?:\w+\s+)?(?:aort\w*|vessels?|arter\w*)",
        "calcium in the walls of the blood vessels",
        "atherosclerosis",
    ),
    (
        r"\btortu\w*|\bectatic\b|\bunfold\w*",
        "a main blood vessel that is more curved than usual",
        "tortuous aorta",
    ),
    (r"\bhiatal hernia\w*|\bhernia\w*", "part of the stomach pushed up into the chest", "hiatal hernia"),
    (r"\bscoliosis\b|\bkyphos\w*|\b(?:spine|spinal) curvature\b", "a curve in the spine", "spine curve"),
    (
        r"\b(?:elevat\w*|eventration) (?:of )?(?:the )?(?:\w+ )?(?:hemi)?diaphragm\w*"
        r"|\b(?:hemi)?diaphragm\w* (?:is )?(?:\w+ )?elevated\b",
        "a breathing muscle under the lung that sits higher than usual",
        "raised diaphragm",
    ),
    (
        r"\bcatheters?\b|\bpicc\b|\bpacemaker\w*|\bpacer\b|\bdefibrillator\b|\bclips?\b|\bsternotomy\b"
        r"|\bstents?\b|\bport-?a-?cath\b|\b(?:orthopedic|surgical|fixation) (?:\w+ )?hardware\b|\bprosthe\w*"
        r"|\bsutures?\b|\b(?:endotracheal|feeding|chest|nasogastric) tubes?\b|\bforeign body\b|\bleads?\b",
        "a medical tube, wire or device",
        "device",
    ),
    (
        r"\b(?:interstitial|bronchovascular|vascular) markings\b",
        "more lines in the lungs than usual",
        "prominent markings",
    ),
    (
        r"\bblunt\w* (?:of )?(?:the )?(?:\w+ )?(?:\w+ )?costophrenic\b|\bcostophrenic (?:\w+ )?blunt\w*",
        "a rounded lower corner of the lung, often from a little fluid or a scar",
        "blunted costophrenic angle",
    ),
    (
        r"\bdegenerat\w*|\bosteophyt\w*|\bspondylo\w*|\bdjd\b|\bspur\w*",
        "wear and tear in the bones of the spine",
        "degenerative change",
    ),
    (
        r"\blymphadenopathy\b|\benlarged (?:\w+ )?(?:lymph )?nodes\b",
        "swollen glands",
        "lymphadenopathy",
    ),
    (r"\bcysts?\b|\bcystic\b", "a fluid-filled sac", "cyst"),
    (r"\bcalcifi\w*", "a calcium deposit", "calcification"),
    (r"\bo?edema\b", "swelling", "oedema"),
    (
        r"\bcardiomegaly\b|\benlarged (?:\w+ )?(?:heart|cardiac)\b"
        r"|\benlargement of the (?:\w+ )?(?:heart|cardiac)\b"
        r"|\b(?:heart|cardiac(?: \w+)?)(?: size)? (?:is )?(?:(?!not\b)\w+ )?(?:enlarged|enlargement)\b"
        r"|\bborderline (?:\w+ )?heart size\b|\bheart size is (?:\w+ )?(?:borderline|upper limits?)\b",
        "an enlarged heart",
        "cardiomegaly",
    ),
    (r"\baneurysms?\b", "a bulge in a blood vessel", "aneurysm"),
    (r"\bhydrocephalus\b", "too much fluid in the spaces of the brain", "hydrocephalus"),
]
_GLOSSARY_RE = [(re.compile(p), plain, kind) for p, plain, kind in _GLOSSARY]
_ORGAN = {
    **dict.fromkeys(
        (
            "effusion",
            "pneumothorax",
            "consolidation",
            "atelectasis",
            "emphysema",
            "granuloma",
            "calcified nodule",
            "pneumonia",
            "airspace disease",
            "hyperinflation",
            "low lung volumes",
            "scarring",
            "atherosclerosis",
            "tortuous aorta",
            "cardiomegaly",
        ),
        "chest",
    ),
    "hydrocephalus": "brain",
}
LUMPS = frozenset({"tumour", "lesion", "nodule"})  # one family when merging repeats

# Location words -> (name, anatomy they imply, part in plain words, side they imply).
# A chest lobe's part also says which level of the thorax a picture shows.
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
LOCATION_PART = {name: part for _, name, _, part, _ in _LOCATION}  # "upper lobe" -> "upper"
_DIMENSIONS = re.compile(r"\b(\d+(?:\.\d+)?)((?:\s*(?:x|\u00d7|by)\s*\d+(?:\.\d+)?)+)\s*(mm|cm)\b")

# NegEx-style cues. Pseudo-negations ("no change in the mass") are blanked first.
_PSEUDO = re.compile(
    r"\bno (?:significant |interval |appreciable )*(?:change|increase|decrease|growth)\b"
    r"|\bwithout (?:significant |interval )*change\b|\bnot (?:significantly )?changed\b|\bnot only\b"
)
_DOUBT_PSEUDO = re.compile(
    r"\bcan ?not (?:be )?(?:excluded|ruled out|exclude|rule out)\b"
    r"|\bnot (?:be )?(?:entirely |completely |totally |definitely )?(?:excluded|ruled out)\b"
    r"|\bcannot exclude\b"
)
_NEG_BEFORE = re.compile(
    r"\bno\b|\bnot\b|\bnor\b|\bwithout\b|\bnegative for\b|\b(?:free|clear) of\b|\babsence of\b"
    r"|\bresolution of\b"
    r"|\bnever\b|\bresolved\b|\b(?:evaluation|evaluate|assess|assessment) for\b|\bto (?:exclude|rule out)\b"
)
_NEG_AFTER = re.compile(
    r"\b(?:has |have )?resolved\b|\bruled out\b|\babsent\b|\bno longer\b|\bdisappeared\b"
    r"|\bnot (?:be |been )?(?:seen|identified|visuali[sz]ed|present|demonstrated|detected)\b"
)
_NORMAL = re.compile(r"\bunremarkable\b|\bnormal\b|\bwithin normal limits\b")
_DOUBT_BEFORE = re.compile(
    r"\bpossibl[ey]\b|\bprobabl[ey]\b|\blikely\b|\bmay\b|\bmight\b|\bcould\b|\bsuspicious for\b"
    r"|\bsuspected\b|\bsuggestive of\b|\bconcerning for\b|\bquestionable\b|\bequivocal\b"
    r"|\bindeterminate\b|\brule out\b|\bdifferential\b|\bquestion(?: of)?\b|\bsuspicion\b|\bconsideration\w*"
    r"|\bcould obscure\b"
)
_DOUBT_AFTER = re.compile(r"\bis (?:suspected|likely|possible|questionable)\b|\?")
_VERSUS = re.compile(r"\bversus\b|\bvs\b")  # "atelectasis versus pneumonia": both sides, that item only
# Clause ends (a cue's scope stops there) and list items (a cue's scope runs across them
# unless an item starts a new statement: "No effusion, a 2 cm mass ...").
_CLAUSE = re.compile(
    r";|\bbut\b|\bhowever\b|\balthough\b|\bthough\b|\bexcept\b|\bapart from\b|\baside from\b"
    r"|\bwhereas\b|\botherwise\b|\bwhile\b|\bthere (?:is|are)\b|\bgiven\b|\ballowing for\b|\baccounting for\b"
    r"|\bdespite\b|\bdue to\b|(?=\bthe (?:lungs|heart) (?:is|are)\b)"  # "no pneumothorax the lungs are ..."
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
# a sentence ends at . ! ? but not after a title ("Dr. Jones"): a name cut off its title
# would escape the PHI scrubber when the sentence is quoted
_SENTENCE_END = re.compile(
    r"(?<=[.!?])(?<!\bDr\.)(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bProf\.)(?:\s+(?=[A-Z0-9(])|(?=[A-Z][a-z]))"
)


# What the reader accepts: English text up to the service's default limit (a long CT report
# is ~5,000 characters). English is told from other languages by its function words: a
# report in German, French, Spanish, Italian or Dutch uses theirs; one in another script
# has few ASCII letters.
MAX_REPORT_CHARS = 20_000
_REDACTION = re.compile(r"\bX{3,}\b")  # a de-identified report's redacted word
_WORD = re.compile(r"[^\W\d_]+")
_ENGLISH = frozenset(
    "the of and is are no not with without in on there a an to for or be this that at by as from "  # noqa: SIM905
    "seen lungs lung heart size clear right left normal stable mild small".split()
)
_FOREIGN = frozenset(
    "de la el los las del y con sin una es hay se der die das und mit ohne ist kein keine nicht im "  # noqa: SIM905
    "le les des et avec sans du au est pas il di e senza è della het een en van geen zijn".split()
)


def check_report(report: object) -> str:
    """``report`` as text the reader can read, or :class:`InvalidInput` in one line: empty,
    over :data:`MAX_REPORT_CHARS`, or not in English."""
    if not isinstance(report, str) or not report.strip():
        raise InvalidInput("the report is empty: paste or give the text of a radiology report")
    if len(report) > MAX_REPORT_CHARS:
        raise InvalidInput(
            f"the report has {len(report):,} characters; the limit is {MAX_REPORT_CHARS:,} "
            "(give the findings and impression only)"
        )
    words = [w.lower() for w in _WORD.findall(report) if "xxxx" not in w.lower()]
    letters = "".join(words)
    ascii_share = sum(c.isascii() for c in letters) / max(len(letters), 1)
    english = sum(w in _ENGLISH for w in words)
    if ascii_share < 0.7 or (len(words) >= 4 and sum(w in _FOREIGN for w in words) > english):
        raise InvalidInput("the report does not read as English: radsynth reads radiology reports in English")
    return report


@dataclass(frozen=True)
class Finding:
    """One positive finding of a report.

    ``kind`` is a finding name ("tumour", "nodule", "effusion", ...), ``term`` the report's
    own word ("mass"); ``modality`` (DICOM code) and ``anatomy`` come from the sentence or the
    report's header, None where the report does not say; ``location`` names a lobe or part
    ("upper lobe", "frontal lobe"); ``size_mm`` in mm; ``uncertain`` for "possible",
    "suspicious for", "cannot be excluded"; ``sentence`` is the report's sentence, as
    written (it may name the patient: scrub it before showing it anywhere).
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
                or bool(_VERSUS.search(scrubbed, a, b))
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
    context_text, sentences = _sections(check_report(report))
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
                _ORGAN.get(mention["kind"])  # "the heart is enlarged" is a chest finding
                or item.anatomy
                or (place[1] if place else None)
                or sentence_facts.anatomy
                or section_facts.anatomy
                or context.anatomy
            )
            # a lump's word names its kind ("mass" -> tumour, "lesion"); other kinds are the glossary's
            kind = parse_prompt(mention["term"]).finding if mention["kind"] in LUMPS else None
            findings.append(
                Finding(
                    kind=kind if kind not in (None, "none") else mention["kind"],
                    term=" ".join(_REDACTION.sub(" ", mention["term"]).split()),  # "calcified XXXX nodule"
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


def finding_mentions(report: str) -> list[dict[str, Any]]:
    """Every finding word of the report's finding sentences, negated, uncertain or not:
    ``term``, ``kind``, ``negated``, ``uncertain``, its ``clause`` and ``sentence`` (for
    measuring the reader; the handout uses :func:`extract_findings`)."""
    if not isinstance(report, str) or not report.strip():
        return []
    return [m | {"sentence": sentence} for _, sentence in _sections(report)[1] for m in _mentions(sentence)]


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
