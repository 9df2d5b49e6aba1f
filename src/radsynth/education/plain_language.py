"""A finding in plain words for a patient, and as a prompt in the shipped model's caption
vocabulary (``radsynth.data.describe``), never from the report's text, so nothing from the
report reaches the images' metadata or the audit log."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from radsynth.data.describe import describe, finding_phrase
from radsynth.education.findings import LOCATION_PART, LUMPS, Finding
from radsynth.text.prompt import parse_prompt

PICTURE_PREFACE = "A computer-made picture, not your scan:"

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
    part = LOCATION_PART.get(finding.location or "")
    level = _THORAX_LEVEL.get(part or "") if finding.anatomy == "chest" else None
    phrase = finding_phrase("present", finding.anatomy, side, finding.size_mm, how["word"])
    return describe(
        how["plane"], modality, finding.anatomy, how.get("contrast"), how.get("window"), level, phrase
    )


# A chest X-ray family draws X-rays from its corpus' captions ("Chest X-ray, PA view, adult.
# Pneumonia with effusion and atelectasis."): pneumonia, with the co-findings those captions
# name (NIH ChestX-ray14's labels) when the report states them too. Where a lesion sits
# is not in those captions, so a picture never claims to show it.
XRAY_FAMILY = "cxr-128"
XRAY_HEAD = "Chest X-ray, PA view, adult."
XRAY_CO_FINDINGS = {
    "effusion": "effusion",
    "atelectasis": "atelectasis",
    "oedema": "edema",
    "cardiomegaly": "cardiomegaly",
    "consolidation": "consolidation",
    "airspace disease": "infiltration",
}
XRAY_NORMAL_PROMPT = f"{XRAY_HEAD} No finding."
_XRAY_MODALITIES = {None, "DX", "CR"}


def xray_co_findings(findings: Sequence[Finding]) -> list[Finding]:
    """The report's findings a chest X-ray picture of pneumonia can show beside it (stated,
    not doubted), once per kind."""
    out: dict[str, Finding] = {}
    for f in findings:
        if f.kind in XRAY_CO_FINDINGS and not f.uncertain and f.modality in _XRAY_MODALITIES:
            out.setdefault(f.kind, f)
    return list(out.values())


def xray_prompt(finding: Finding, findings: Sequence[Finding]) -> str | None:
    """A chest X-ray family's prompt for ``finding`` (pneumonia, with the report's drawable
    co-findings), or None for anything else: a co-finding alone is told in words."""
    if finding.kind != "pneumonia" or finding.modality not in _XRAY_MODALITIES:
        return None
    if finding.anatomy not in (None, "chest"):
        return None
    co = [XRAY_CO_FINDINGS[f.kind] for f in xray_co_findings(findings)]
    with_co = f" with {', '.join(co[:-1])} and {co[-1]}" if len(co) > 1 else f" with {co[0]}" if co else ""
    return f"{XRAY_HEAD} Pneumonia{with_co}."


def family_for(findings: Sequence[Finding]) -> str:
    """The shipped family that pictures a report: the chest X-ray family for a report that
    states an X-ray, the default (CT / MR) family for one that states CT or MR; where the
    report states neither, the family that can picture more of its findings (the default
    on a tie)."""
    from radsynth import DEFAULT_FAMILY

    stated = {f.modality for f in findings if f.modality}
    if stated & {"DX", "CR"}:
        return XRAY_FAMILY
    if stated:
        return DEFAULT_FAMILY
    xray = sum(xray_prompt(f, findings) is not None for f in findings)
    default = sum(finding_prompt(f) is not None for f in findings)
    return XRAY_FAMILY if xray > default else DEFAULT_FAMILY


def xray_caption(finding: Finding, findings: Sequence[Finding]) -> str:
    """What a patient reads under chest X-ray pictures of pneumonia (and its co-findings)."""
    co = [f.plain for f in xray_co_findings(findings)]
    also = f", with {', '.join(co[:-1])} and {co[-1]}" if len(co) > 1 else f", with {co[0]}" if co else ""
    what = finding.plain if not finding.uncertain else f"a possible {finding.plain.removeprefix('a ')}"
    return (
        f"{PICTURE_PREFACE} chest X-rays showing {what} (pneumonia){also}, like the one your report "
        "describes. Where it shows in your lungs, and how much, will differ."
    )


def co_finding_caption(finding: Finding) -> str:
    """A co-finding shown inside the pneumonia pictures, not on its own."""
    return (
        f"Your report describes {described(finding)}. The program cannot draw it on its own; "
        "the chest X-ray pictures of the lung infection above include it."
    )


def comparison_caption() -> str:
    """Under the normal chest X-rays shown for comparison."""
    return f"{PICTURE_PREFACE} chest X-rays with nothing abnormal, for comparison with the pictures above."


def _where(finding: Finding) -> str:
    """ "the upper part of the right lung", "the front part of the brain, on the left side"."""
    side, anatomy = finding.side, finding.anatomy
    part = LOCATION_PART.get(finding.location or "")
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


def report_word(finding: Finding) -> str | None:
    """The report's medical word for ``finding`` ("cardiomegaly"), or None where it is a
    phrase the plain words already say ("heart is mildly enlarged")."""
    term, plain = finding.term.lower(), finding.plain.lower()
    if len(term.split()) > 3 or set(re.findall(r"\w{5,}", term)) & set(plain.split()):
        return None
    return term


def described(finding: Finding) -> str:
    """ "a possible lump (mass) about 2.3 cm across in the upper part of the right lung"."""
    words = finding.plain
    if finding.uncertain:
        article, _, rest = words.partition(" ")
        words = f"a possible {rest}" if article in ("a", "an") else f"possible {words}"
    if (term := report_word(finding)) and term not in words:
        words += f" ({term})"
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
        f"{PICTURE_PREFACE} {scan} of the {facts.anatomy} showing {described(finding)}, "
        "like the one your report describes."
    )


def text_caption(finding: Finding) -> str:
    """What a patient reads for a finding shown in words only."""
    return (
        f"Your report describes {described(finding)}. No picture is shown for this: the "
        "program that makes the pictures cannot draw it yet."
    )
