"""The handout job end to end over HTTP on a real server: a chest CT report in, a
self-contained HTML page with SYNTHETIC-labelled pictures and a one-page PDF out; empty and
all-normal reports refused with one line (5 sampler steps, one picture per finding)."""

from __future__ import annotations

import re

import pytest

CHEST_CT = """CT CHEST WITH CONTRAST
INDICATION: Chronic cough.
FINDINGS: There is a 2.3 x 1.9 cm spiculated mass in the right upper lobe. No pleural effusion.
IMPRESSION: Right upper lobe mass.
"""

NORMAL_CT = """CT CHEST WITHOUT CONTRAST
FINDINGS: The lungs are clear. No pleural effusion or pneumothorax. Heart size normal.
IMPRESSION: Normal CT of the chest.
"""


@pytest.fixture(scope="module")
def handout_job(live_server):
    """A finished handout job for ``CHEST_CT`` and its files as downloaded."""
    with live_server.client() as client:
        job = client.post("/api/handout", json={"report": CHEST_CT, "n": 1, "seed": 0, "steps": 5})
        assert job.status_code == 202, job.text
        done = live_server.wait(job.json()["id"])
        assert done["state"] == "done", done["error"]
        results = done["results"]
        html = client.get(results["html"])
        pdf = client.get(results["pdf"])
    assert html.status_code == 200 and pdf.status_code == 200
    return done, html.text, pdf.content


def test_handout_job_lists_its_html_and_pdf(handout_job):
    done, _, _ = handout_job
    results = done["results"]
    prefix = f"/api/jobs/{done['id']}/files/"
    assert results["html"] == prefix + "handout.html" and results["pdf"] == prefix + "handout.pdf"
    assert results["files"] == [
        {"name": "handout.html", "url": results["html"]},
        {"name": "handout.pdf", "url": results["pdf"]},
    ]


def test_handout_html_has_the_labelled_picture_and_plain_words(handout_job):
    _, html, _ = handout_job
    [image] = re.findall(r"<img [^>]*>", html)  # one finding (the mass), one picture
    assert 'src="data:image/png;base64,' in image and 'alt="SYNTHETIC' in image
    assert html.count("<span>SYNTHETIC</span>") == 1
    assert (
        "A computer-made picture, not your scan: a CT scan of the chest showing a lump (mass) "
        "about 2.3 cm across in the upper part of the right lung" in html
    )
    assert "effusion" not in html  # "No pleural effusion" is not a finding


def test_handout_pdf_is_one_page(handout_job):
    _, _, pdf = handout_job
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 1


def test_an_empty_report_is_a_one_line_422(live_server):
    with live_server.client() as client:
        answer = client.post("/api/handout", json={"report": " \n ", "n": 1, "steps": 5})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "report is empty" in detail and "\n" not in detail


def test_a_report_with_only_normal_findings_is_refused_before_it_is_queued(live_server):
    with live_server.client() as client:
        answer = client.post("/api/handout", json={"report": NORMAL_CT, "n": 1, "steps": 5})
        too_many_steps = client.post(
            "/api/handout", json={"report": "Mass in the right upper lobe.", "steps": 999}
        )
    assert answer.status_code == 422
    assert "no positive finding" in answer.json()["detail"] and "\n" not in answer.json()["detail"]
    assert too_many_steps.status_code == 422
    assert "steps must be an integer in 1..200" in too_many_steps.json()["detail"]


def test_a_report_in_another_language_or_too_long_is_a_one_line_422(live_server):
    with live_server.client() as client:
        german = client.post(
            "/api/handout", json={"report": "Kein Pleuraerguss. Herz normal groß. Lunge ohne Infiltrate."}
        )
        long = client.post("/api/handout", json={"report": "Small right pleural effusion. " * 800})
    assert german.status_code == 422 and "does not read as English" in german.json()["detail"]
    assert long.status_code == 422 and "the limit is 20000" in long.json()["detail"]
    assert "\n" not in german.json()["detail"] + long.json()["detail"]


XRAY = "EXAMINATION: Chest X-ray.\nFINDINGS: Right lower lobe pneumonia."


def test_the_family_follows_the_report_and_weights_never_name_a_path(live_server):
    """Without ``weights`` the job records the family the report asked for; a path, a family
    that is not shipped or a value of the wrong type is a one-line 422, nothing queued."""
    with live_server.client() as client:
        job = client.post("/api/handout", json={"report": XRAY, "n": 1, "steps": 2})
        hostile = [
            client.post("/api/handout", json={"report": XRAY, "weights": weights})
            for weights in (
                "../../src/radsynth/weights/cxr-128",
                "/etc",
                "cxr-128/../demo-ct-mr-64",
                "x" * 5000,
            )
        ]
        typed = client.post("/api/handout", json={"report": XRAY, "weights": 7})
    assert job.status_code == 202, job.text
    assert job.json()["params"]["weights"] == "cxr-128"
    for answer in hostile:
        assert answer.status_code == 422, answer.text
        assert "no shipped ldm model named" in answer.json()["detail"] and "\n" not in answer.json()["detail"]
    assert typed.status_code == 422
    done = live_server.wait(job.json()["id"])
    assert done["state"] == "done", done["error"]
