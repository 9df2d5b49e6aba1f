"""The report reader on real chest X-ray report sentences (NegBio / CheXpert-style rules):
negated lists after "no", "without evidence of", "clear of"; uncertainty ("question",
"versus", "not entirely excluded"); hedges that are not findings ("fractures may not be
demonstrated"); clause ends ("given", run-on sentences, a missing space after a period).

The IU X-ray reports' terms are unverified (``../shared/data/iu_xray_reports_text_only/
SOURCE.md``), so their sentences are not copied here: each case names a report by uid and a
few words of it, and the test reads the sentence from the CSV at run time (skipped where
``../shared`` is absent). Sentences written here for the same rules are our own.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest

from radsynth.education.findings import extract_findings

IU_REPORTS = Path(__file__).resolve().parents[3] / "shared/data/iu_xray_reports_text_only/indiana_reports.csv"


@pytest.fixture(scope="module")
def iu_reports() -> dict[str, str]:
    if not IU_REPORTS.is_file():
        pytest.skip(f"IU X-ray reports not found at {IU_REPORTS}")
    with IU_REPORTS.open(newline="", encoding="utf-8") as f:
        return {r["uid"]: f"{r['findings']} {r['impression']}" for r in csv.DictReader(f)}


def iu_sentence(reports: dict[str, str], uid: str, words: str) -> str:
    """The sentence of report ``uid`` that holds ``words`` (ends at a period)."""
    text = reports[uid]
    at = text.find(words)
    assert at >= 0, f"report {uid} no longer holds {words!r}"
    start = max(text.rfind(". ", 0, at) + 2, 0) if text.rfind(". ", 0, at) >= 0 else 0
    end = text.find(".", at + len(words))
    return text[start : end + 1 if end >= 0 else len(text)].strip()


def kinds(text: str) -> dict[str, bool]:
    """kind -> uncertain, for the findings the reader keeps."""
    return {f.kind: f.uncertain for f in extract_findings(f"FINDINGS: {text}")}


# (uid, words that find the sentence, the findings kept: kind -> uncertain)
IU_CASES = [
    # a list after "clear of" is all negated (pneumothorax and effusion were read present)
    ("1619", "clear of focal airspace disease", {"low lung volumes": False}),
    ("2195", "without evidence of focal airspace disease", {"hyperinflation": False}),
    ("18", "no definite pleural effusion", {}),
    ("1845", "Essentially resolved bibasilar atelectasis", {}),  # "resolved" before the finding
    # a hedge about what the film can show is no finding (a broken bone was read present)
    ("398", "fractures may not be demonstrated", {}),
    # uncertainty: "question ... versus", "not entirely excluded"
    ("2194", "Question small right pleural effusion", {"effusion": True}),
    ("123", "is not entirely excluded", {"airspace disease": True, "nodule": True}),
    # "normal" speaks for the heart, not for the lung volumes it is read "given"
    ("3708", "given the low lung volumes", {"low lung volumes": False}),
    ("2340", "Lung volumes are low, but no focal", {"low lung volumes": False}),
    # a run-on sentence: the negation stops where a new statement starts
    ("1203", "the lungs are hyperinflated", {"hyperinflation": False}),
]


@pytest.mark.parametrize("uid,words,expected", IU_CASES, ids=[f"iu{c[0]}" for c in IU_CASES])
def test_iu_report_sentences(iu_reports, uid, words, expected):
    assert kinds(iu_sentence(iu_reports, uid, words)) == expected


def test_a_missing_space_after_a_period_ends_the_sentence(iu_reports):
    # "Heart size normal.No significant change in left base airspace disease and small effusion."
    report = iu_reports["3891"]
    assert re.search(r"normal\.No significant change", report)
    found = {f.kind for f in extract_findings(report)}
    assert {"airspace disease", "effusion"} <= found


def test_no_negated_pneumothorax_in_the_iu_reports_is_read_present(iu_reports):
    """Every IU report (of the first 1,500) whose every pneumothorax sentence negates it:
    the reader keeps no pneumothorax (it kept 51 such before, across the set)."""
    negated = re.compile(r"\b(?:no|without|negative for|free of|clear of)\b[^.]*\bpneumothora", re.I)
    checked = 0
    for uid in sorted(iu_reports, key=int)[:1500]:
        sentences = [s for s in re.split(r"(?<=\.)\s*", iu_reports[uid]) if "pneumothora" in s.lower()]
        if sentences and all(negated.search(s) for s in sentences):
            checked += 1
            assert "pneumothorax" not in {f.kind for f in extract_findings(iu_reports[uid])}, uid
    assert checked > 500


@pytest.mark.parametrize(
    "sentence,expected",
    [
        ("The lungs are clear of nodules, effusion, or pneumothorax.", {}),
        ("Lungs free of consolidation and effusion; mild cardiomegaly.", {"cardiomegaly": False}),
        (
            "No pneumothorax or effusion. Stable calcified granuloma in the right upper lobe.",
            {"granuloma": False},
        ),
        ("Subtle rib fractures may not be seen on this film.", {}),
        ("Heart is mildly enlarged, without pulmonary edema.", {"cardiomegaly": False}),
        ("The heart is not enlarged.", {}),
        ("The heart is mildly enlarged. No pneumothorax.", {"cardiomegaly": False}),
        (
            "Right basilar opacity, atelectasis versus pneumonia.",
            {"opacity": False, "atelectasis": True, "pneumonia": True},
        ),
        (
            "No change in the calcified aortic knob.",
            {"atherosclerosis": False},
        ),  # "no change": not a negation
    ],
)
def test_chexpert_style_rules_on_our_own_sentences(sentence, expected):
    assert kinds(sentence) == expected


def test_redactions_dates_and_numbers_of_iu_reports_never_reach_the_handout(iu_reports):
    """Handout pages (words only, as without a model) for 400 IU reports that hold a redaction:
    no "XXXX" in the quotes, captions or glossary (the PDF's words), no date, no long number."""
    from radsynth.education.plain_language import text_caption
    from radsynth.education.render import HandoutItem, glossary, render_html

    redacted = [uid for uid in sorted(iu_reports, key=int) if "XXXX" in iu_reports[uid]]
    shown = 0
    for uid in random.Random(0).sample(redacted, 400):
        items = [HandoutItem(f, text_caption(f)) for f in extract_findings(iu_reports[uid])]
        page = re.sub(r"<style>.*?</style>|<footer>.*?</footer>", "", render_html(items), flags=re.DOTALL)
        words = page + " ".join(
            f"{t} {p} {i.caption}" for (t, p), i in zip(glossary(items), items, strict=False)
        )
        assert not re.search(r"x{4}", words, re.IGNORECASE), uid
        assert not re.search(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{5,}\b", words), uid
        shown += "Your report says" in page
    assert shown > 200  # most of them quote a sentence that had a redaction nearby
