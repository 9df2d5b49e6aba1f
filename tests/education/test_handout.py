"""Patient education handouts: findings read from realistic report texts (negation,
uncertainty, headers, repeats), and ``radsynth handout`` end to end with the shipped LDM
at a few steps (HTML with labelled pictures inline, a one-page PDF, marked PNGs)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from radsynth import __version__
from radsynth.cli import main
from radsynth.education.findings import extract_findings
from radsynth.education.handout import make_handout
from radsynth.education.plain_language import finding_prompt, picture_caption, text_caption
from radsynth.errors import InvalidInput
from radsynth.provenance.verify import verify_file

CHEST_CT = """CT CHEST WITH CONTRAST

CLINICAL HISTORY: Chronic cough, rule out mass. 40 pack-year smoking history.
COMPARISON: None.
TECHNIQUE: Axial images of the chest were obtained after intravenous contrast.

FINDINGS:
There is a 2.3 x 1.9 cm spiculated mass in the right upper lobe. No pleural effusion or
pneumothorax. Heart size is normal. No mediastinal or hilar lymphadenopathy.

IMPRESSION:
1. Spiculated right upper lobe mass, suspicious for primary lung malignancy.
2. No pleural effusion.
"""

BRAIN_MR = """EXAM: MRI BRAIN WITH AND WITHOUT CONTRAST
INDICATION: Headaches.
FINDINGS: There is a 1.5 cm enhancing lesion in the left frontal lobe with surrounding
vasogenic edema. No acute infarct. No hemorrhage, mass effect or midline shift. The
ventricles are normal in size.
IMPRESSION: Left frontal lesion with edema; metastasis cannot be excluded.
"""

NORMAL_CT = """CT CHEST WITHOUT CONTRAST
FINDINGS: The lungs are clear. No focal consolidation, pleural effusion or pneumothorax.
No suspicious pulmonary nodules. Heart size normal.
IMPRESSION: Normal CT of the chest. No evidence of malignancy.
"""

# Two lumps the model can draw and one finding it cannot (shown in words only).
FOLLOW_UP_CT = """CT CHEST
FINDINGS
- 2.1 cm mass in the right upper lobe.
- New 9 mm nodule in the left lower lobe.
- Small left pleural effusion.
- The previously seen right middle lobe nodule has resolved.
IMPRESSION
Right upper lobe mass and left lower lobe nodule, concerning for metastatic disease.
"""


def test_chest_ct_mass_is_one_finding_in_the_right_lung():
    [mass] = extract_findings(CHEST_CT)  # the impression's restatement and "malignancy" merge in
    assert (mass.kind, mass.term, mass.modality, mass.anatomy) == ("tumour", "mass", "CT", "chest")
    assert (mass.side, mass.location, mass.size_mm, mass.uncertain) == ("right", "upper lobe", 23.0, False)
    assert mass.sentence.startswith("There is a 2.3 x 1.9 cm spiculated mass")
    prompt = finding_prompt(mass)
    assert prompt == "axial chest CT, lung window, upper thorax, tumour in the right lung, 23 mm"
    caption = picture_caption(mass, prompt)
    assert caption.startswith("A computer-made picture, not your scan: a CT scan of the chest")
    assert "a lump (mass) about 2.3 cm across in the upper part of the right lung" in caption


def test_brain_mr_left_frontal_lesion_is_drawn_and_the_oedema_told_in_words():
    lesion, oedema = extract_findings(BRAIN_MR)
    assert (lesion.kind, lesion.modality, lesion.anatomy) == ("lesion", "MR", "brain")
    assert (lesion.side, lesion.location, lesion.size_mm) == ("left", "frontal lobe", 15.0)
    assert not lesion.uncertain  # "metastasis cannot be excluded" doubts the cause, not the lesion
    assert finding_prompt(lesion) == "axial T1-weighted brain MR, lesion in the left hemisphere, 15 mm"
    assert "front part of the brain, on the left side" in picture_caption(lesion, finding_prompt(lesion))
    assert (oedema.kind, oedema.term, oedema.anatomy) == ("oedema", "edema", "brain")
    assert finding_prompt(oedema) is None
    assert "swelling (edema)" in text_caption(oedema) and "No picture is shown" in text_caption(oedema)


def test_a_normal_or_empty_report_is_one_line_invalid_input(tmp_path):
    assert extract_findings(NORMAL_CT) == []
    with pytest.raises(InvalidInput, match="no positive finding"):
        make_handout(NORMAL_CT, tmp_path / "out")
    with pytest.raises(InvalidInput, match="report is empty"):
        make_handout("  \n ", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "sentence",
    [
        "No pleural effusion or pneumothorax.",
        "No focal consolidation, pleural effusion, or pneumothorax.",
        "Without evidence of a mass.",
        "Negative for pulmonary nodules.",
        "No evidence of intracranial haemorrhage or infarct.",
        "The previously seen right upper lobe nodule has resolved.",
        "Pneumothorax is ruled out.",
        "The brain parenchyma is unremarkable without lesion.",
        "Mild mass effect on the left lateral ventricle.",  # not a mass
    ],
)
def test_negated_and_normal_statements_give_no_finding(sentence):
    assert extract_findings(f"FINDINGS: {sentence}") == []


@pytest.mark.parametrize(
    "sentence,kind,side,uncertain",
    [
        ("No effusion, but a 12 mm nodule in the right middle lobe.", "nodule", "right", False),
        ("No effusion, a 8 mm nodule in the left lower lobe.", "nodule", "left", False),
        ("Right lower lobe mass without pleural effusion.", "tumour", "right", False),
        ("No change in the size of the left lower lobe nodule.", "nodule", "left", False),
        ("A right upper lobe mass cannot be excluded.", "tumour", "right", True),
        ("Possible small right pleural effusion.", "effusion", "right", True),
        ("Nodule in the lingula.", "nodule", "left", False),  # the lingula is in the left lung
    ],
)
def test_positive_findings_survive_nearby_negations(sentence, kind, side, uncertain):
    [finding] = extract_findings(f"CT CHEST\nFINDINGS: {sentence}")
    assert (finding.kind, finding.side, finding.uncertain) == (kind, side, uncertain)


def test_headers_bullets_and_sections():
    report = """MRI BRAIN
HISTORY: Known lung cancer, evaluate for metastasis.
FINDINGS
* Enhancing lesion in the right occipital lobe.
* No hydrocephalus.
RECOMMENDATION: Follow-up MRI of the mass in 3 months.
"""
    [lesion] = extract_findings(report)  # history and recommendation are not findings
    assert (lesion.modality, lesion.anatomy, lesion.side, lesion.location) == (
        "MR",
        "brain",
        "right",
        "occipital lobe",
    )
    assert lesion.sentence == "Enhancing lesion in the right occipital lobe."
    # the exam names the modality only in its header; the sentence names the place
    [nodule] = extract_findings(
        "EXAM: CT CHEST\nLUNGS: A 6 mm nodule in the left upper lobe. Lungs otherwise clear."
    )
    assert (nodule.modality, nodule.anatomy, nodule.side, nodule.size_mm) == ("CT", "chest", "left", 6.0)
    # a report with no headers at all
    [mass] = extract_findings("Large mass in the left lung. No effusion.")
    assert (mass.anatomy, mass.side, mass.modality) == ("chest", "left", None)
    assert finding_prompt(mass) == "axial chest CT, lung window, tumour in the left lung"
    # a finding the model cannot draw on the stated modality is told in words
    [xray] = extract_findings("CHEST X-RAY\nFINDINGS: Right upper lobe mass.")
    assert xray.modality == "DX" and finding_prompt(xray) is None


def test_quoted_report_sentences_reach_the_html_without_names_dates_or_record_numbers(tmp_path):
    report = """CT CHEST
PATIENT: John Smith   MRN: 12345678   DATE: 03/04/2021
FINDINGS: Small left pleural effusion in Mr Jonathan Smithers (MRN 87654321), new since 4 March 2021.
Discussed with Dr. Ann Jones, who also noted mild cardiomegaly.
"""
    effusion, heart = extract_findings(report)
    assert effusion.sentence.startswith("Small left pleural effusion in Mr Jonathan Smithers")
    assert heart.sentence.startswith("Discussed with Dr. Ann Jones")  # "Dr." ends no sentence
    handout = make_handout(report, tmp_path / "out")  # words only: no model is loaded
    html = handout.html.read_text(encoding="utf-8")
    assert "Your report says: &ldquo;Small left pleural effusion in Mr [REDACTED] (MRN [REDACTED])" in html
    assert "Your report says: &ldquo;Discussed with Dr. [REDACTED], who also noted mild cardiomegaly." in html
    for identifier in ("John", "Smith", "Jonathan", "Smithers", "Jones", "12345678", "87654321"):
        assert identifier not in html
    assert "03/04/2021" not in html and "4 March 2021" not in html


def test_a_section_header_inside_a_line_is_not_quoted(tmp_path):
    report = "CT CHEST WITH CONTRAST. FINDINGS: Small right pleural effusion. IMPRESSION: Effusion."
    html = make_handout(report, tmp_path / "out").html.read_text(encoding="utf-8")  # words only
    assert "Your report says: &ldquo;Small right pleural effusion." in html
    assert "&ldquo;FINDINGS" not in html


@pytest.fixture(scope="module")
def handout_run(tmp_path_factory):
    """``radsynth handout`` on a report file: two drawable findings, one in words only."""
    root = tmp_path_factory.mktemp("handout")
    report = root / "report.txt"
    report.write_text(FOLLOW_UP_CT, encoding="utf-8")
    out = root / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["handout", str(report), "-o", str(out), "--n", "1", "--steps", "5", "--seed", "3"])
    return code, report, out, printed.getvalue()


@pytest.mark.slow  # generates with the shipped LDM (module fixture)
def test_cli_writes_a_self_contained_html_with_labelled_synthetic_pictures(handout_run):
    code, _, out, printed = handout_run
    assert code == 0
    assert "2 pictured (2 synthetic picture(s)), 1 in words only" in printed
    html = (out / "handout.html").read_text(encoding="utf-8")
    images = re.findall(r"<img [^>]*>", html)
    assert len(images) == 2  # one picture for each of the two lumps
    assert all('src="data:image/png;base64,' in img and 'alt="SYNTHETIC' in img for img in images)
    assert html.count('class="synthetic-label"') == 2 and html.count("<span>SYNTHETIC</span>") == 2
    assert not re.search(r"""(?:src|href)=["']?(?:https?:|//|file:)""", html)  # nothing fetched
    assert "upper part of the right lung" in html and "lower part of the left lung" in html
    assert "fluid around the left lung (pleural effusion). No picture is shown" in html
    assert "They are not your images" in html
    assert re.search(rf"Made on \d{{4}}-\d{{2}}-\d{{2}} with radsynth {re.escape(__version__)}", html)
    assert "middle lobe" not in html  # the resolved nodule is not in the handout


@pytest.mark.slow  # generates with the shipped LDM (module fixture)
def test_cli_writes_a_one_page_pdf_and_marked_pngs(handout_run):
    _, _, out, _ = handout_run
    pdf = (out / "handout.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1
    pngs = sorted(out.glob("finding-*/ldm_seed*.png"))
    assert [p.parent.name for p in pngs] == ["finding-1", "finding-2"]
    assert all(verify_file(p).synthetic for p in pngs)
    assert not list(out.glob("finding-3*"))  # the effusion has no pictures


@pytest.mark.slow  # generates with the shipped LDM (module fixture)
def test_cli_refuses_to_overwrite_and_reads_stdin(handout_run, capsys, monkeypatch, tmp_path):
    _, report, out, _ = handout_run
    assert main(["handout", str(report), "-o", str(out)]) == 1
    assert "would overwrite an earlier handout" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(NORMAL_CT))
    assert main(["handout", "-", "-o", str(tmp_path / "normal")]) == 1
    err = capsys.readouterr().err
    assert "no positive finding" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "normal").exists()
    assert main(["handout", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "x")]) == 1
    assert "no such report file" in capsys.readouterr().err


def test_the_web_pages_example_reports_read_as_their_buttons_say():
    """The handout panel's examples (serve/static/index.html): the CT mass, and the chest X-ray
    report whose "clear of ... pneumothorax" is negated and whose findings are told in words."""
    import html as html_module
    from pathlib import Path

    import radsynth.serve

    page = (Path(radsynth.serve.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    examples = {
        label: html_module.unescape(report)
        for report, label in re.findall(r'data-report="([^"]+)">([^<]+)</button>', page)
    }
    assert set(examples) == {"CT chest: right upper lobe mass", "Chest X-ray: enlarged heart, small effusion"}
    mass = extract_findings(examples["CT chest: right upper lobe mass"])[0]
    assert finding_prompt(mass) is not None  # drawn by the demo model
    xray = extract_findings(examples["Chest X-ray: enlarged heart, small effusion"])
    assert [(f.kind, f.modality) for f in xray] == [
        ("cardiomegaly", "DX"),
        ("effusion", "DX"),
        ("granuloma", "DX"),
    ]
    assert all(finding_prompt(f) is None for f in xray)  # no chest X-ray model yet: words only
