"""Patient education handouts: findings read from realistic report texts (negation,
uncertainty, headers, repeats), and ``radsynth handout`` end to end with the shipped LDM
at a few steps (HTML with labelled pictures inline, a one-page PDF, marked PNGs)."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from PIL import Image as PILImage

from radsynth import __version__
from radsynth.cli import main
from radsynth.education.findings import extract_findings
from radsynth.education.handout import label_synthetic, make_handout
from radsynth.education.plain_language import (
    family_for,
    finding_prompt,
    picture_caption,
    text_caption,
    xray_prompt,
)
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
    assert "2 pictured (2 synthetic picture(s) by demo-ct-mr-64), 1 in words only" in printed
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
    assert set(examples) == {"CT chest: right upper lobe mass", "Chest X-ray: pneumonia, small effusion"}
    mass = extract_findings(examples["CT chest: right upper lobe mass"])
    assert finding_prompt(mass[0]) is not None and family_for(mass) == "demo-ct-mr-64"
    xray = extract_findings(examples["Chest X-ray: pneumonia, small effusion"])
    assert [(f.kind, f.modality) for f in xray] == [
        ("pneumonia", "DX"),
        ("effusion", "DX"),
        ("cardiomegaly", "DX"),
        ("granuloma", "DX"),
    ]
    assert family_for(xray) == "cxr-128"  # the chest X-ray family draws the pneumonia
    expected = "Chest X-ray, PA view, adult. Pneumonia with effusion and cardiomegaly."
    assert xray_prompt(xray[0], xray) == expected


CHEST_XRAY = """EXAMINATION: Chest X-ray, PA and lateral views.
INDICATION: Cough and fever.
FINDINGS: Right lower lobe pneumonia with a small right pleural effusion. Possible left basilar
atelectasis. No pneumothorax. Stable calcified granuloma in the right upper lobe.
IMPRESSION: Right lower lobe pneumonia.
"""


def test_the_report_picks_the_family_that_pictures_it():
    """A stated X-ray goes to the chest X-ray family, a stated CT or MR to the default one;
    without a stated modality, the family that pictures more of the findings."""
    assert family_for(extract_findings(CHEST_XRAY)) == "cxr-128"
    assert family_for(extract_findings(CHEST_CT)) == "demo-ct-mr-64"
    assert family_for(extract_findings(BRAIN_MR)) == "demo-ct-mr-64"
    assert family_for(extract_findings("FINDINGS: Right lower lobe pneumonia.")) == "cxr-128"
    assert family_for(extract_findings("FINDINGS: 2 cm mass in the right upper lobe.")) == "demo-ct-mr-64"


def test_an_xray_picture_draws_pneumonia_with_the_stated_co_findings_only():
    findings = extract_findings(CHEST_XRAY)
    pneumonia = next(f for f in findings if f.kind == "pneumonia")
    # the doubted atelectasis and the granuloma stay out of the picture; effusion goes in
    assert xray_prompt(pneumonia, findings) == "Chest X-ray, PA view, adult. Pneumonia with effusion."
    assert all(xray_prompt(f, findings) is None for f in findings if f.kind != "pneumonia")
    assert xray_prompt(extract_findings(CHEST_CT)[0], findings) is None  # a CT mass is not an X-ray


def test_the_label_is_in_the_pixels_and_leaves_the_rest_untouched():
    image = np.full((128, 128), 0.5, np.float32)
    labelled = label_synthetic(image)
    band = labelled[-8:]
    assert band.min() == 0.0 and band.max() > 0.95  # white letters on a black band
    assert np.array_equal(labelled[:100], image[:100])
    small = label_synthetic(np.full((64, 64), 0.5, np.float32))
    assert small[-6:].max() > 0.7 and small[-6:].min() == 0.0  # fits at 64 px (thin strokes)


@pytest.fixture(scope="module")
def xray_handout(tmp_path_factory):
    """``radsynth handout`` on a chest X-ray report, the family chosen by the report."""
    root = tmp_path_factory.mktemp("xray-handout")
    report = root / "report.txt"
    report.write_text(CHEST_XRAY, encoding="utf-8")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["handout", str(report), "-o", str(root / "out"), "--n", "2", "--steps", "4"])
    return code, root / "out", printed.getvalue()


@pytest.mark.slow  # generates with the shipped chest X-ray LDM (module fixture)
def test_a_chest_xray_handout_pictures_pneumonia_beside_normal_xrays(xray_handout):
    code, out, printed = xray_handout
    assert code == 0, printed
    assert "by cxr-128" in printed and "normal X-rays beside them for comparison" in printed
    html = (out / "handout.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<img [^>]*>", html)) == 4  # 2 of the pneumonia, 2 normal
    assert html.count("Pictures made by the computer model ldm-cxr-128.") == 2
    assert "chest X-rays showing a lung infection (pneumonia), with fluid around the lung" in html
    assert "chest X-rays with nothing abnormal, for comparison" in html
    assert "include it" in html  # the effusion: in the pneumonia pictures, not on its own
    assert "scar" not in html or "granuloma" in html  # the granuloma is told in words
    prompts = {
        folder.name: json.loads((folder / "generation.json").read_text())["prompt"]
        for folder in sorted(out.iterdir())
        if folder.is_dir()
    }
    assert prompts == {
        "finding-1": "Chest X-ray, PA view, adult. Pneumonia with effusion.",
        "comparison": "Chest X-ray, PA view, adult. No finding.",
    }
    for png in sorted(out.glob("*/ldm_seed*.png")):
        assert verify_file(png).synthetic  # marked like every output
        pixels = np.asarray(PILImage.open(png), np.float32)
        pixels /= pixels.max()
        assert pixels[-8:].max() > 0.9 and np.median(pixels[-8:]) < 0.05  # the label, in the pixels
