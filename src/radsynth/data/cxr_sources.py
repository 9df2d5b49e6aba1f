"""Readers for the real chest X-ray data sets in ``../shared/data`` (one per folder).

Each reader turns a folder's label CSV into :class:`CxrItem` rows holding only what the
source states (see each folder's SOURCE.md): view, age, sex, findings, patient, licence,
the clinical note where there is one. Nothing is guessed: an empty age stays ``None``, an
unlabelled ieee8023 image ("todo") has finding ``unknown``. Rows whose image is missing are
returned as problems, not items.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

KERMANY = "cxr_kermany_pneumonia_256"
NIH = "cxr_nih14_pneumonia_subset_256"
IEEE = "cxr_covid_ieee8023_256"
FIGURE1 = "figure1_covid_cxr_with_notes"

LICENCES = {
    KERMANY: "CC BY 4.0 (Kermany et al. 2018, doi:10.17632/rscbjbr9sj.2)",
    NIH: "no restrictions, attribution required (NIH Clinical Center ChestX-ray14; Wang et al. CVPR 2017)",
    # The per-image licence (``license`` column) is prepended where the source gives one.
    IEEE: "collection CC BY-NC-SA 4.0, non-commercial research (Cohen et al. 2020, ieee8023)",
    FIGURE1: "research use only, not for redistribution (Figure 1 / COVID-Net)",
}
# The same terms in a few words, for tables.
SHORT_LICENCES = {
    KERMANY: "CC BY 4.0",
    NIH: "no restrictions, attribution",
    IEEE: "CC BY-NC-SA 4.0; per image",
    FIGURE1: "research only, not redistributable",
}
# Sources whose terms keep them out of anything shipped (weights, packages, published images).
NOT_REDISTRIBUTABLE = frozenset({FIGURE1})

# ieee8023 ``finding`` -> (finding, subtype, organism); ARDS is a co-finding, not a pneumonia.
_IEEE_FINDINGS: dict[str, tuple[str, str | None, str | None]] = {
    "COVID-19": ("pneumonia", "COVID-19", "SARS-CoV-2"),
    "COVID-19, ARDS": ("pneumonia", "COVID-19", "SARS-CoV-2"),
    "SARS": ("pneumonia", "viral", "SARS-CoV"),
    "Influenza": ("pneumonia", "viral", "influenza"),
    "Varicella": ("pneumonia", "viral", "varicella"),
    "Streptococcus": ("pneumonia", "bacterial", "Streptococcus"),
    "Klebsiella": ("pneumonia", "bacterial", "Klebsiella"),
    "Mycoplasma Bacterial Pneumonia": ("pneumonia", "bacterial", "Mycoplasma"),
    "Legionella": ("pneumonia", "bacterial", "Legionella"),
    "E.Coli": ("pneumonia", "bacterial", "E. coli"),
    "Bacterial": ("pneumonia", "bacterial", None),
    "Pneumocystis": ("pneumonia", "fungal", "Pneumocystis"),
    "Lipoid": ("pneumonia", "lipoid", None),
    "Pneumonia": ("pneumonia", None, None),
    "ARDS": ("ARDS", None, None),
    "No Finding": ("normal", None, None),
    "todo": ("unknown", None, None),
    "": ("unknown", None, None),
}
_VIEWS = {"PA": "PA", "AP": "AP", "AP SUPINE": "AP", "AP ERECT": "AP", "L": "lateral", "LATERAL": "lateral"}


@dataclass
class CxrItem:
    """One image as its source describes it."""

    source: str
    image: Path
    key: str  # unique name within the source (the output file stem)
    subject: str
    view: str | None = None  # PA, AP, lateral; None = frontal, PA/AP not stated
    age: int | None = None  # years
    age_text: str | None = None  # the source's words where it gives no number ("early 40s")
    age_group: str | None = None
    sex: str | None = None  # male / female
    finding: str = "unknown"  # normal, pneumonia, ARDS, unknown
    subtype: str | None = None  # bacterial, viral, COVID-19, fungal, lipoid
    organism: str | None = None
    co_findings: list[str] = field(default_factory=list)
    note: str | None = None  # the clinical note as the source gives it (not yet scrubbed)
    licence: str = ""
    redistributable: bool = True  # False: keep out of shipped weights, packages, published images
    extra: dict = field(default_factory=dict)


@dataclass
class SourceRead:
    """What one folder gave: items, and problems as (reason, example) pairs."""

    name: str
    items: list[CxrItem] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def age_group(age: int | None) -> str | None:
    if age is None:
        return None
    return "child" if age < 18 else "adult" if age < 65 else "older adult"


def _age(text: str) -> int | None:
    """Years, or None when empty, not a number or impossible (NIH 2017 has ages up to 412)."""
    text = (text or "").strip()
    if not text.isdigit():
        return None
    years = int(text)
    return years if years <= 100 else None


def _sex(text: str) -> str | None:
    return {"M": "male", "F": "female"}.get((text or "").strip().upper())


def _view(text: str) -> str | None:
    return _VIEWS.get((text or "").strip().upper())


def _rows(path: Path, encoding: str = "utf-8") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f))


def _note(note: str) -> str | None:
    """The note on one line; the builder scrubs it (PHI) before it is stored anywhere."""
    return " ".join((note or "").split()) or None


def read_kermany(folder: Path) -> SourceRead:
    """Pediatric (1-5 years, stated for the whole set) frontal films, CC BY 4.0."""
    out = SourceRead(KERMANY)
    subtypes = {"normal": None, "bacteria": "bacterial", "virus": "viral"}
    for row in _rows(folder / "labels.csv"):
        path = folder / row["file"]
        if not path.is_file():
            out.problems.append(("CSV row without an image", row["file"]))
            continue
        finding = "normal" if row["label"] == "NORMAL" else "pneumonia"
        out.items.append(
            CxrItem(
                KERMANY,
                path,
                key=Path(row["file"]).stem,
                subject=row["patient_key"],
                age_text="1-5 years",
                age_group="child",
                finding=finding,
                subtype=subtypes.get(row["subtype"]),
                licence=LICENCES[KERMANY],
                extra={"source_file": row["original_file"]},
            )
        )
    return out


def read_nih(folder: Path) -> SourceRead:
    """Adult PA/AP films with the NIH 14-finding labels (text-mined, > 90 % accurate)."""
    out = SourceRead(NIH)
    for row in _rows(folder / "labels.csv"):
        path = folder / row["file"]
        if not path.is_file():
            out.problems.append(("CSV row without an image", row["file"]))
            continue
        labels = [x.strip() for x in row["finding_labels"].split("|") if x.strip()]
        pneumonia = "Pneumonia" in labels
        co = sorted(x.replace("_", " ").lower() for x in labels if x not in ("Pneumonia", "No Finding"))
        age = _age(row["patient_age"])
        out.items.append(
            CxrItem(
                NIH,
                path,
                key=Path(row["file"]).stem,
                subject=row["patient_id"],
                view=_view(row["view_position"]),
                age=age,
                age_group=age_group(age),
                sex=_sex(row["patient_gender"]),
                finding="pneumonia" if pneumonia else "normal" if labels == ["No Finding"] else "other",
                co_findings=co,
                licence=LICENCES[NIH],
                extra={"source_file": row["image_index"], "follow_up": int(row["follow_up"])},
            )
        )
    return out


def read_ieee(folder: Path) -> SourceRead:
    """ieee8023 COVID-19 collection: mixed views and qualities, clinical notes, lung masks."""
    out = SourceRead(IEEE)
    for row in _rows(folder / "metadata.csv"):
        path = folder / row["file"]
        if not path.is_file():
            out.problems.append(("CSV row without an image", row["file"]))
            continue
        finding, subtype, organism = _IEEE_FINDINGS.get(row["finding"].strip(), ("unknown", None, None))
        co = ["ARDS"] if "ARDS" in row["finding"] and finding != "ARDS" else []
        age = _age(row["age"])
        own = row["license"].strip()
        extra = {"source_file": row["filename"], "source_finding": row["finding"]}
        extra.update({k: row[k] for k in ("doi", "url", "mask_file") if row[k].strip()})
        # Some ieee8023 images were taken from Figure 1 (research use only): treat them so.
        via_figure1 = "figure1.com" in row["url"]
        if row["view"].strip().upper() == "AP SUPINE":
            extra["position"] = "supine"
        out.items.append(
            CxrItem(
                IEEE,
                path,
                key=Path(row["file"]).stem,
                subject=row["patientid"],
                view=_view(row["view"]),
                age=age,
                age_group=age_group(age),
                sex=_sex(row["sex"]),
                finding=finding,
                subtype=subtype,
                organism=organism,
                co_findings=co,
                note=_note(row["clinical_notes"]),
                licence=f"image: {own or 'unspecified'}; {LICENCES[IEEE]}"
                + (f"; taken from Figure 1: {LICENCES[FIGURE1]}" if via_figure1 else ""),
                redistributable=not via_figure1,
                extra=extra,
            )
        )
    return out


def read_figure1(folder: Path) -> SourceRead:
    """Figure 1 COVID-19 set: frontal films of any size, notes, research use only."""
    out = SourceRead(FIGURE1)
    findings = {"COVID-19": ("pneumonia", "COVID-19"), "No finding": ("normal", None)}
    findings["Pneumonia"] = ("pneumonia", None)
    images = {p.stem: p for p in (folder / "images").glob("*") if p.is_file()}
    for row in _rows(folder / "metadata.csv", encoding="cp1252"):
        pid = row["patientid"].strip()
        if pid not in images:
            out.problems.append(("CSV row without an image", pid))
            continue
        age_raw = row["age"].strip()
        age = _age(age_raw)
        finding, subtype = findings.get(row["finding"].strip(), ("unknown", None))
        out.items.append(
            CxrItem(
                FIGURE1,
                images[pid],
                key=pid,
                subject=re.sub(r"[a-z]+$", "", pid),  # COVID-00003a, -00003b: one patient
                view=_view(row["view"]),
                age=age,
                age_text=None if age is not None or not age_raw else age_raw,
                age_group=age_group(age if age is not None else _first_number(age_raw)),
                sex=_sex(row["sex"]),
                finding=finding,
                subtype=subtype,
                organism="SARS-CoV-2" if subtype == "COVID-19" else None,
                note=_note(row["notes"]),
                licence=LICENCES[FIGURE1],
                redistributable=False,
                extra={"source_file": images[pid].name},
            )
        )
    return out


def _first_number(text: str) -> int | None:
    match = re.search(r"\d+", text)
    return int(match.group()) if match else None


READERS: dict[str, tuple[str, Callable[[Path], SourceRead]]] = {
    KERMANY: ("labels.csv", read_kermany),
    NIH: ("labels.csv", read_nih),
    IEEE: ("metadata.csv", read_ieee),
    FIGURE1: ("metadata.csv", read_figure1),
}
