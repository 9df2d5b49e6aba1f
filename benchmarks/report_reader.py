"""The handout's report reader against the curators' labels of the IU chest X-ray reports.

    .venv/bin/python benchmarks/report_reader.py              # prints tables, writes JSON
    .venv/bin/python benchmarks/report_reader.py --split dev  # the part the rules were chosen on

Each IU report (findings + impression, read as ``FINDINGS: ... IMPRESSION: ...``) goes
through ``extract_findings``; a finding is "present" when the reader keeps it (a negated or
normal mention is dropped; an uncertain one is kept, as the handout shows it, marked
"possible"). The truth is the curators' MeSH / Problems labels, grouped per finding below;
"normal" is a report the curators indexed as normal, read as normal when the reader keeps
no finding at all. Reports indexed "No Indexing" or with no text are left out.

The reports are split by id (a seeded shuffle of the uids, 70 % dev / 30 % held out): the
reader's rules were chosen on dev; the held-out figure is the one to quote.

Errors are grouped by cause, from the reader's own mentions: a false "present" in a sentence
with a negation cue is a *negation scope* error (a negated finding read as present, the
worst error for a patient); one the reader marked uncertain is an *uncertain mention*;
another is a *label the curators left out*. A missed finding is an *over-negation* when the
reader saw the word and negated it, a *missed synonym* when a wider word list finds it in
the text, and otherwise a *label from the image, not the text*.

The data: ``../shared/data/iu_xray_reports_text_only`` (research use with citation of
Demner-Fushman et al., JAMIA 2016; its terms are unverified, so no report text is committed:
the JSON keeps ids and short excerpts for the error examples only).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from radsynth.education.findings import extract_findings, finding_mentions

REPORTS = Path(__file__).resolve().parents[2] / "shared/data/iu_xray_reports_text_only/indiana_reports.csv"
RESULTS = Path(__file__).parent / "results" / "report_reader.json"
SPLIT_SEED, DEV_SHARE = 0, 0.7

Labels = tuple[frozenset[str], frozenset[str]]  # (Problems, MeSH)
SETTINGS = {
    "split": f"seeded shuffle of uids (seed {SPLIT_SEED}), {DEV_SHARE:.0%} dev (rules chosen on it),"
    " the rest held out",
    "present": "kept by extract_findings; negated and normal mentions dropped",
    "uncertain": "counted as absent, as the curators index definite findings (the handout still shows it,"
    " marked 'possible'); macro_f1_15_uncertain_as_present counts it as present",
    "normal": "curators' 'normal'; the reader keeps no finding at all",
    "left_out": "reports with no findings or impression text, and 'No Indexing'",
    "macro": "mean F1 over the 15 findings; pneumothorax reported beside them",
}


def _problems(*names: str) -> Callable[[Labels], bool]:
    return lambda labels: bool(labels[0] & set(names))


def _mesh(*prefixes: str, word: str = "") -> Callable[[Labels], bool]:
    return lambda labels: any(m.startswith(prefixes) and word in m for m in labels[1])


# finding -> (the curators' labels that mean it, the reader's kinds that mean it, a wider
# word list that finds it in the text: what tells a missed synonym from an image-only label).
# The 15 most frequent findings of the labels (report counts over all 3,851: degenerative
# spine 547, opacity 432, granuloma 407, ...), leaving out "Calcinosis" (292: calcium in
# the aorta, hilar nodes or granulomas, indexed under either of those too) and devices (268:
# lines and clips, no finding to explain); pneumothorax (22) is reported beside them.
FINDINGS: dict[str, tuple[Callable[[Labels], bool], frozenset[str], str]] = {
    "normal": (_problems("normal"), frozenset(), ""),
    "degenerative spine": (
        lambda lb: (
            _mesh("Thoracic Vertebrae/degenerative", "Spine/degenerative")(lb)
            or _problems("Osteophyte", "Spondylosis")(lb)
        ),
        frozenset({"degenerative change"}),
        r"degenerat|osteophyt|spondyl|djd|arthritic",
    ),
    "opacity": (_problems("Opacity"), frozenset({"opacity"}), r"opaci|densit|haz"),
    "granuloma": (
        _problems("Calcified Granuloma", "Granuloma", "Granulomatous Disease"),
        frozenset({"granuloma", "calcified nodule"}),
        r"granulom|calcified nod|calcific",
    ),
    "cardiomegaly": (
        _problems("Cardiomegaly"),
        frozenset({"cardiomegaly"}),
        r"cardiomegaly|enlarge|heart size|cardiac silhouette",
    ),
    "atelectasis": (
        _problems("Pulmonary Atelectasis"),
        frozenset({"atelectasis"}),
        r"atelecta|subsegmental|platelike|discoid",
    ),
    "low lung volumes": (
        _mesh("Lung", word="hypoinflation"),
        frozenset({"low lung volumes"}),
        r"low|hypoinfla|inspirat|volume",
    ),
    "tortuous aorta": (
        _mesh("Aorta", word="tortuous"),
        frozenset({"tortuous aorta"}),
        r"tortu|ectat|unfold",
    ),
    "hyperinflation": (
        _mesh("Lung", word="hyperdistention"),
        frozenset({"hyperinflation"}),
        r"hyperinfla|hyperexpan|hyperaera|flatten|overinfla",
    ),
    "airspace disease": (
        _problems("Airspace Disease", "Pneumonia", "Infiltrate", "Consolidation"),
        frozenset({"airspace disease", "consolidation", "pneumonia"}),
        r"airspace|air space|pneumon|infiltra|consolidat",
    ),
    "scarring": (_problems("Cicatrix"), frozenset({"scarring"}), r"scar|fibro|cicatri"),
    "effusion": (_problems("Pleural Effusion"), frozenset({"effusion"}), r"effusion|blunt|fluid"),
    "emphysema": (
        _problems("Emphysema", "Pulmonary Emphysema", "Pulmonary Disease, Chronic Obstructive"),
        frozenset({"emphysema"}),
        r"emphysem|copd|obstructive|bull",
    ),
    "atherosclerosis": (  # calcium in the aortic wall: indexed as either
        lambda lb: (
            _problems("Atherosclerosis")(lb) or _mesh("Calcinosis/aorta", "Calcinosis/blood vessels")(lb)
        ),
        frozenset({"atherosclerosis"}),
        r"atheros|calcifi|vascular",
    ),
    # a calcified nodule is indexed as a nodule (with Calcinosis) or as a calcified granuloma
    "nodule": (_problems("Nodule"), frozenset({"nodule", "calcified nodule"}), r"nodul|mass"),
}
EXTRA = {"pneumothorax": (_problems("Pneumothorax"), frozenset({"pneumothorax"}), r"pneumothora")}
NEGATION_CUE = re.compile(
    r"\b(?:no|not|without|negative|free of|clear of|resolved|absent|removed)\b", re.IGNORECASE
)


def load_reports(path: Path = REPORTS) -> list[dict[str, str]]:
    """The IU rows with text and an index (``No Indexing`` left out), ordered by uid."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if (r["findings"] + r["impression"]).strip()]
    rows = [r for r in rows if r["Problems"].strip() != "No Indexing"]
    return sorted(rows, key=lambda r: int(r["uid"]))


def report_text(row: dict[str, str]) -> str:
    parts = [("FINDINGS", row["findings"].strip()), ("IMPRESSION", row["impression"].strip())]
    return "\n".join(f"{name}: {text}" for name, text in parts if text)


def split(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(dev, held out): a seeded shuffle of the uids, 70 / 30."""
    uids = sorted(r["uid"] for r in rows)
    random.Random(SPLIT_SEED).shuffle(uids)
    dev = set(uids[: round(DEV_SHARE * len(uids))])
    return [r for r in rows if r["uid"] in dev], [r for r in rows if r["uid"] not in dev]


def _labels(row: dict[str, str]) -> Labels:
    return (
        frozenset(p.strip() for p in row["Problems"].split(";")),
        frozenset(m.strip() for m in row["MeSH"].split(";")),
    )


def _excerpt(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def read_reports(rows: list[dict[str, str]]) -> dict[str, tuple]:
    """uid -> (text, kept findings, every mention)."""
    read = {}
    for row in rows:
        text = report_text(row)
        read[row["uid"]] = (text, extract_findings(text), finding_mentions(text))
    return read


def evaluate(rows: list[dict[str, str]], read: dict, findings: dict, uncertain_present: bool = False) -> dict:
    """Per finding: tp / fp / fn, precision, recall, F1, errors by cause with examples.
    ``uncertain_present``: a finding the reader marks uncertain counts as present."""
    out = {}
    for name, (truth_of, kinds, wide) in findings.items():
        counts, causes, examples = Counter(), Counter(), {}
        for row in rows:
            text, kept, mentions = read[row["uid"]]
            if not uncertain_present:
                kept = [f for f in kept if not f.uncertain]
            truth = truth_of(_labels(row))
            said = not kept if name == "normal" else any(f.kind in kinds for f in kept)
            counts["tp" if truth and said else "fp" if said else "fn" if truth else "tn"] += 1
            if truth == said or name == "normal":
                continue
            mine = [m for m in mentions if m["kind"] in kinds]
            if said:
                f = next(f for f in kept if f.kind in kinds)
                clause = next(
                    (m["clause"] for m in mentions if m["term"] == f.term and m["sentence"] == f.sentence),
                    f.sentence,
                )
                cause = (
                    "negation scope (negated read as present)"
                    if NEGATION_CUE.search(clause[: max(0, clause.lower().find(f.term.lower()))])
                    else "uncertain mention counted as present"
                    if f.uncertain
                    else "label the curators left out"
                )
                quote = f.sentence
            elif mine and all(m["negated"] for m in mine):
                cause, quote = "over-negation (present read as negated)", mine[0]["sentence"]
            elif mine:
                cause, quote = "uncertain mention counted as absent", mine[0]["sentence"]
            elif wide and (m := re.search(rf"[^.]*(?:{wide})[^.]*", text, re.IGNORECASE)):
                cause, quote = "missed synonym", m.group()
            else:
                cause, quote = "label from the image, not the text", ""
            causes[cause] += 1
            examples.setdefault(cause, []).append({"uid": row["uid"], "excerpt": _excerpt(quote.strip())})
        tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {
            "reports_labelled": tp + fn,
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": round(precision, 3),
            "recall": round(recall, 3),
            "f1": round(f1, 3),
            "errors_by_cause": dict(causes.most_common()),
            "examples": {cause: ex[:3] for cause, ex in examples.items()},
        }
    return out


def _macro(table: dict, names) -> float:
    return round(sum(table[n]["f1"] for n in names) / len(names), 3)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=Path, default=REPORTS)
    parser.add_argument("--split", choices=("dev", "held-out", "both"), default="both")
    parser.add_argument("--examples", action="store_true", help="print error examples")
    args = parser.parse_args()
    rows = load_reports(args.reports)
    dev, held = split(rows)
    parts = {"dev": dev, "held-out": held}
    if args.split != "both":
        parts = {args.split: parts[args.split]}
    t0 = time.perf_counter()
    reads = {name: read_reports(part) for name, part in parts.items()}
    seconds = time.perf_counter() - t0
    tables = {name: evaluate(part, reads[name], FINDINGS | EXTRA) for name, part in parts.items()}
    with_uncertain = {
        name: evaluate(part, reads[name], FINDINGS | EXTRA, uncertain_present=True)
        for name, part in parts.items()
    }
    console = Console(width=120)
    table = Table(title=f"report reader vs IU labels ({len(rows)} reports)")
    table.add_column("finding")
    for part in tables:
        for col in ("n", "P", "R", "F1"):
            table.add_column(f"{part} {col}", justify="right")
    for name in FINDINGS | EXTRA:
        cells = []
        for t in tables.values():
            r = t[name]
            cells += [
                str(r["reports_labelled"]),
                f"{r['precision']:.2f}",
                f"{r['recall']:.2f}",
                f"{r['f1']:.2f}",
            ]
        table.add_row(name, *cells)
    summary = {}
    for part, t in tables.items():
        negated = sum(
            r["errors_by_cause"].get("negation scope (negated read as present)", 0) for r in t.values()
        )
        summary[part] = {
            "reports": len(parts[part]),
            "macro_f1_15": _macro(t, list(FINDINGS)),
            "macro_f1_with_pneumothorax": _macro(t, list(FINDINGS | EXTRA)),
            "macro_f1_15_uncertain_as_present": _macro(with_uncertain[part], list(FINDINGS)),
            "negated_read_as_present": negated,
        }

    table.add_row(
        "macro F1 (15)", *[c for s in summary.values() for c in ("", "", "", f"{s['macro_f1_15']:.3f}")]
    )
    table.add_row(
        "negated read as present",
        *[c for s in summary.values() for c in ("", "", "", str(s["negated_read_as_present"]))],
    )
    console.print(table)
    console.print(summary)
    if args.examples:
        for part, t in tables.items():
            for name, r in t.items():
                for cause, ex in r["examples"].items():
                    for e in ex:
                        console.print(
                            f"[{part}] {name} | {cause} | {e['uid']}: {e['excerpt']}", highlight=False
                        )
    if args.split == "both":
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "benchmark": "report_reader",
                    "commit": _commit(),
                    "data": "iu_xray_reports_text_only/indiana_reports.csv (findings + impression)",
                    "settings": SETTINGS,
                    "seconds": round(seconds, 1),
                    "summary": summary,
                    "per_finding": tables,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
