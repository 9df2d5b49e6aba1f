"""Patient handouts at scale: 200 random IU chest X-ray reports (seeded) through
``make_handout`` with the shipped LDM loaded once: errors, seconds per handout, the
captions' reading grade, and whether anything of the report's identifiers reached it.

    .venv/bin/python benchmarks/handout_scale.py              # 200 reports, writes JSON
    .venv/bin/python benchmarks/handout_scale.py --reports 20 # a quick look

Each report is the exam the IU collection records for every report (``EXAMINATION: Chest
X-ray.``), then findings + impression (``FINDINGS: ... IMPRESSION: ...``): the handout picks
the family the report asks for (``family_for``: the chest X-ray family ``cxr-128``, which
draws pneumonia with its stated co-findings and normal X-rays beside them; everything else in
words). Both shipped families are loaded once, before the clock starts. A report that states
no finding gives the one-line "nothing to illustrate" and counts as such, not as an error.

Reading grade: Flesch-Kincaid grade of each handout's captions (``textstat``; its syllables
from Pyphen, as NLTK's CMU dictionary cannot be downloaded here); without textstat the
grade is left out. Leaks: the handout page's visible text (and the PDF's words: captions and
glossary) is searched for the report's redactions (``XXXX``), dates, long numbers and a
name after a title.
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import random
import re
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

from radsynth.education.findings import positive_findings
from radsynth.education.handout import make_handout
from radsynth.education.plain_language import family_for
from radsynth.education.render import glossary
from radsynth.errors import InvalidInput

sys.path.insert(0, str(Path(__file__).parent))
from report_reader import REPORTS, _commit, report_text  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "handout_scale.json"
SEED, N_REPORTS, N_PER_FINDING, STEPS = 0, 200, 1, 5
EXAM = "EXAMINATION: Chest X-ray.\n"  # the IU collection's exam, for every report
WARM_UP = {  # one drawn finding per family
    "demo-ct-mr-64": "FINDINGS: 2 cm mass in the right upper lobe.",
    "cxr-128": EXAM + "FINDINGS: Right lower lobe pneumonia.",
}

LEAKS = {
    "redaction XXXX": re.compile(r"x{4}", re.IGNORECASE),
    "date": re.compile(
        r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b(?:19|20)\d{2}\b"
        r"|\b(?:jan|feb|mar|apr|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2}\b",
        re.IGNORECASE,
    ),
    "record number": re.compile(r"\b\d{5,}\b"),
    "name after a title": re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Prof)\.? (?!\[REDACTED\])[A-Z][a-z]+"),
}


def _grade_fn():
    """Flesch-Kincaid grade from textstat (syllables from Pyphen), or None without it."""
    try:
        import textstat
        import textstat.backend.counts._count_syllables as syllables
    except ImportError:
        return None
    syllables.get_cmudict = lambda lang: None  # NLTK's cmudict is a download: Pyphen counts
    return textstat.flesch_kincaid_grade


def visible_text(page: str) -> str:
    """The handout page's words: no style, no inline pictures, no tags, no footer (its date is
    the handout's own)."""
    page = re.sub(r"<style>.*?</style>|<img [^>]*>|<footer>.*?</footer>", " ", page, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=N_REPORTS)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    with REPORTS.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if (r["findings"] + r["impression"]).strip()]
    sample = random.Random(SEED).sample(rows, args.reports)
    grade = _grade_fn()

    from radsynth.generate.models import load_pipeline

    t0 = time.perf_counter()
    pipelines = {family: load_pipeline(family, device="cpu") for family in WARM_UP}
    outcomes, seconds, grades, leaks, examples, per_handout = {}, [], [], {}, {}, []
    findings = pictured = compared = 0
    families: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # one handout with a picture first: the text encoder, the watermark and the PDF's
        # picture code load once per process, part of loading the model
        for family, report in WARM_UP.items():
            make_handout(
                report, Path(tmp) / f"warm-up-{family}", n_per_finding=1, steps=args.steps,
                weights=family, pipeline=pipelines[family],
            )  # fmt: skip
        load_s = time.perf_counter() - t0
        for row in sample:
            t0 = time.perf_counter()
            text = EXAM + report_text(row)
            try:
                family = family_for(positive_findings(text))
                handout = make_handout(
                    text,
                    Path(tmp) / row["uid"],
                    n_per_finding=N_PER_FINDING,
                    seed=SEED,
                    steps=args.steps,
                    weights=family,
                    pipeline=pipelines[family],
                    audit_log=Path(tmp) / "audit.jsonl",
                )
            except InvalidInput as err:
                outcome = (
                    "nothing to illustrate" if "nothing to illustrate" in str(err) else f"refused: {err}"
                )
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                continue
            except Exception:  # noqa: BLE001 - counted and shown: the point of the run
                outcomes["error"] = outcomes.get("error", 0) + 1
                examples.setdefault("error", []).append(
                    {"uid": row["uid"], "traceback": traceback.format_exc()}
                )
                continue
            seconds.append(time.perf_counter() - t0)
            per_handout.append({"uid": row["uid"], "seconds": round(seconds[-1], 2)})
            outcomes["handout"] = outcomes.get("handout", 0) + 1
            shown = [item for item in handout.items if item.finding is not None]
            findings += len(shown)
            pictured += sum(1 for item in shown if item.images)
            compared += len(handout.items) - len(shown)
            families[family] = families.get(family, 0) + 1
            captions = " ".join(item.caption for item in handout.items)
            if grade:
                grades.append(grade(captions))
                per_handout[-1]["grade"] = round(grades[-1], 2)
            per_handout[-1]["pictured"] = sum(1 for item in shown if item.images)
            words = " ".join(
                [visible_text(handout.html.read_text(encoding="utf-8")), captions]
                + [f"{t} {p}" for t, p in glossary(handout.items)]
            )
            for name, pattern in LEAKS.items():
                if m := pattern.search(words):
                    leaks[name] = leaks.get(name, 0) + 1
                    examples.setdefault(name, []).append({"uid": row["uid"], "match": m.group()})
    first = seconds[0] if seconds else None  # the first handout imports matplotlib
    seconds.sort()
    summary = {
        "reports": args.reports,
        "outcomes": outcomes,
        "errors": outcomes.get("error", 0),
        "findings_shown": findings,
        "findings_pictured": pictured,
        "handouts_with_normal_xrays_for_comparison": compared,
        "handouts_by_family": families,
        "model_load_s": round(load_s, 2),
        "seconds_per_handout": {
            "mean": round(statistics.mean(seconds), 2),
            "median": round(statistics.median(seconds), 2),
            "p95": round(seconds[int(0.95 * (len(seconds) - 1))], 2),
            "max": round(seconds[-1], 2),
            "first_handout": round(first, 2),
            "max_after_the_first": round(max(seconds[:-1] if seconds[-1] == first else seconds), 2),
        }
        if seconds
        else None,
        "fk_grade_of_captions": {
            "mean": round(statistics.mean(grades), 2),
            "median": round(statistics.median(grades), 2),
            "max": round(max(grades), 2),
            "share_at_or_below_8": round(sum(g <= 8 for g in grades) / len(grades), 3),
        }
        if grades
        else "textstat not installed",
        "leaks": {name: leaks.get(name, 0) for name in LEAKS},
    }
    table = Table(title=f"handouts for {args.reports} random IU reports (seed {SEED})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        table.add_row(key, json.dumps(value))
    Console(width=120).print(table)
    if args.reports == N_REPORTS and args.steps == STEPS:
        RESULTS.parent.mkdir(exist_ok=True)
        settings = {
            "seed": SEED,
            "weights": "by the report (family_for); both families loaded once",
            "report_header": EXAM.strip(),
            "device": "cpu",
            "n_per_finding": N_PER_FINDING,
            "steps": args.steps,
            "report": "findings + impression of a seeded random sample of the IU reports with text",
            "grade": "Flesch-Kincaid grade (textstat, Pyphen syllables) of each handout's captions",
            "seconds": "make_handout per report after the model is loaded (model_load_s: load_pipeline, one"
            " warm-up handout with a picture): reading, pictures, HTML and PDF",
        }
        payload = {
            "benchmark": "handout_scale",
            "commit": _commit(),
            "settings": settings,
            "summary": summary,
        }
        payload["examples"] = {k: v[:5] for k, v in examples.items()}
        payload["slowest"] = sorted(per_handout, key=lambda h: -h["seconds"])[:5]
        payload["hardest_to_read"] = sorted(per_handout, key=lambda h: -h.get("grade", 0))[:5]
        RESULTS.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
