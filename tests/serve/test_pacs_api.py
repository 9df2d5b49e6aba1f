"""The service in front of a real Orthanc (Debian orthanc + orthanc-dicomweb on loopback):
generated studies pushed through the API land in the PACS; a study pulled from the PACS is
translated and pushed back; the gate's STOW-RS endpoint forwards a real study,
quarantines a synthetic one and forwards a suspect one with a note (or holds it); a PACS
that is down fails the job clearly and loses nothing."""

# ruff: noqa: F811 (fixtures imported from tests.serve.orthanc are test parameters by design)

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from pydicom.data import get_testdata_file

from radsynth.serve.dicomweb import PacsClient
from radsynth.serve.settings import Limits, ServeSettings

from .conftest import start_server
from .orthanc import empty_orthanc, free_port, orthanc, synthetic_dicom  # noqa: F401

MR = Path(get_testdata_file("MR_small.dcm"))
CT = Path(get_testdata_file("CT_small.dcm"))
HEAD = "coronal head CT, bone window"


@pytest.fixture(scope="module")
def pacs_server(orthanc, tmp_path_factory):
    settings = ServeSettings(
        data_dir=tmp_path_factory.mktemp("serve-pacs"), pacs=orthanc.dicomweb, limits=Limits(max_upload_mb=8)
    )
    server, stop = start_server(settings)
    yield server
    stop()


def _studies(pacs: PacsClient) -> set[str]:
    return {s["0020000D"]["Value"][0] for s in pacs.search_studies()}


def test_generated_study_lands_in_orthanc_through_the_api(pacs_server, empty_orthanc):
    with pacs_server.client() as client:
        job = client.post("/api/generate", json={"prompt": HEAD, "n": 3, "steps": 5, "pacs": True}).json()
    done = pacs_server.wait(job["id"])
    assert done["state"] == "done", done["error"]
    assert done["results"]["pacs"]["stored"] == 3 and done["results"]["pacs"]["failed"] == 0
    pacs = PacsClient(empty_orthanc.dicomweb)
    (study,) = _studies(pacs)
    instances = pacs.retrieve_study(study)
    assert len(instances) == 3
    assert {ds.ConversionType for ds in instances} == {"SYN"}
    assert len({ds.PatientID for ds in instances}) == 1


@pytest.fixture(scope="module")
def head_ct_series(tmp_path_factory) -> list[Path]:
    """Four real head CT slices in HU (InVesalius, Debian invesalius-examples) as a DICOM series."""
    from radsynth.data import sources
    from radsynth.io import Image, write_dicom

    volume = sources._load_cranium().image
    mid = volume.array.shape[0] // 2
    block = Image(volume.array[mid - 2 : mid + 2], spacing=volume.spacing, modality="CT", units="HU")
    return sorted(write_dicom(block, tmp_path_factory.mktemp("head-ct") / "series").glob("*.dcm"))


def test_a_study_pulled_from_the_pacs_is_translated_and_pushed_back(
    pacs_server, empty_orthanc, head_ct_series
):
    pacs = PacsClient(empty_orthanc.dicomweb)
    assert pacs.store(head_ct_series)["stored"] == 4
    source = pydicom.dcmread(head_ct_series[0])
    with pacs_server.client() as client:
        job = client.post(
            "/api/translate", data={"task": "denoise", "study_uid": source.StudyInstanceUID, "pacs": "true"}
        ).json()
    done = pacs_server.wait(job["id"])
    assert done["state"] == "done", done["error"]
    assert done["results"]["pacs"]["stored"] == 4
    new = _studies(pacs) - {source.StudyInstanceUID}
    assert len(new) == 1  # fresh UIDs: the translation never poses as the source study
    translated = pacs.retrieve_study(new.pop())
    assert len(translated) == 4 and {ds.ConversionType for ds in translated} == {"SYN"}
    assert translated[0].Rows == source.Rows
    assert [float(v) for v in translated[0].PixelSpacing] == [float(v) for v in source.PixelSpacing]


def test_gate_forwards_a_real_study_and_quarantines_a_synthetic_one(
    pacs_server, empty_orthanc, synthetic_dicom
):
    sender = DICOMwebClient(
        url=f"{pacs_server.url}/gate", headers={"Authorization": f"Bearer {pacs_server.token}"}
    )
    datasets = [pydicom.dcmread(MR), pydicom.dcmread(synthetic_dicom[0])]
    answer = sender.store_instances(datasets)  # STOW-RS as a modality would send it
    accepted = [item.ReferencedSOPInstanceUID for item in answer.get("ReferencedSOPSequence", [])]
    refused = [item.ReferencedSOPInstanceUID for item in answer.get("FailedSOPSequence", [])]
    assert accepted == [datasets[0].SOPInstanceUID]
    assert refused == [datasets[1].SOPInstanceUID]
    assert _studies(PacsClient(empty_orthanc.dicomweb)) == {datasets[0].StudyInstanceUID}
    with pacs_server.client() as admin:
        quarantined = admin.get("/api/gate/quarantine").json()["quarantined"]
    mine = [q for q in quarantined if q.get("sop_uid") == datasets[1].SOPInstanceUID]
    assert mine and mine[0]["verdict"] == "synthetic-marked" and mine[0]["sender"] == "tests"


@pytest.fixture
def strict_server(orthanc, tmp_path):
    """A service whose gate quarantines what only the detector suspects (``--gate-suspect
    quarantine``), not the default ``forward-noted``."""
    settings = ServeSettings(data_dir=tmp_path, pacs=orthanc.dicomweb, gate_suspect_policy="quarantine")
    server, stop = start_server(settings)
    yield server
    stop()


@pytest.fixture(scope="module")
def unmarked(tmp_path_factory) -> Path:
    """A real output of the shipped VAE as plain DICOM (no marking, no watermark): only the
    detector can say anything about it, and it says suspect."""
    from radsynth.generate import load_pipeline
    from radsynth.io import Image, write_dicom

    image = load_pipeline("demo-ct-mr-64", "vae", device="cpu").generate("axial chest CT", n=1, seed=5)[0]
    return write_dicom(Image(image.array, modality="CT"), tmp_path_factory.mktemp("vae") / "vae.dcm")


def test_what_only_the_detector_suspects_reaches_the_pacs_with_a_note_by_default(
    pacs_server, empty_orthanc, unmarked
):
    """Suspicion, not proof: by default the image is stored, with a note; a real CT (pydicom's
    CT_small) goes in without one."""
    sender = DICOMwebClient(
        url=f"{pacs_server.url}/gate", headers={"Authorization": f"Bearer {pacs_server.token}"}
    )
    suspect, ct = pydicom.dcmread(unmarked), pydicom.dcmread(CT)
    sender.store_instances([suspect, ct])
    (stored,) = PacsClient(empty_orthanc.dicomweb).retrieve_study(suspect.StudyInstanceUID)
    assert stored.ImageComments.startswith("radsynth gate: suspect, not proof")
    (real,) = PacsClient(empty_orthanc.dicomweb).retrieve_study(ct.StudyInstanceUID)
    assert "radsynth gate" not in str(real.get("ImageComments", ""))


def test_what_only_the_detector_suspects_is_quarantined_then_released_by_an_admin(
    strict_server, empty_orthanc, unmarked
):
    """Under ``--gate-suspect quarantine`` the gate holds it back as suspect; an admin reads
    the evidence and releases it into the PACS."""
    pacs_server = strict_server
    ct = pydicom.dcmread(unmarked)
    sender = DICOMwebClient(
        url=f"{pacs_server.url}/gate", headers={"Authorization": f"Bearer {pacs_server.token}"}
    )
    with pytest.raises(requests.HTTPError) as refused:  # 409: nothing of the request was accepted
        sender.store_instances([ct])
    failed = refused.value.response.json()["00081198"]["Value"]
    assert [item["00081155"]["Value"][0] for item in failed] == [ct.SOPInstanceUID]
    with pacs_server.client() as admin:
        held = [
            q
            for q in admin.get("/api/gate/quarantine").json()["quarantined"]
            if q["sop_uid"] == ct.SOPInstanceUID
        ]
        detector = held[0]["evidence"]["detector"]
        assert held[0]["verdict"] == "suspect" and detector["p_synthetic"] >= detector["threshold"]
        assert _studies(PacsClient(empty_orthanc.dicomweb)) == set()
        released = admin.post(
            f"/api/gate/release/{ct.SOPInstanceUID}", json={"why": "checked by a radiographer"}
        )
        assert released.status_code == 200 and released.json()["released_by"] == "tests"
        assert _studies(PacsClient(empty_orthanc.dicomweb)) == {ct.StudyInstanceUID}
        again = admin.post(f"/api/gate/release/{ct.SOPInstanceUID}", json={"why": "again"})
        assert again.status_code == 422 and "no quarantined instance" in again.json()["detail"]
        remaining = admin.get("/api/gate/quarantine").json()["quarantined"]
    assert all(q["sop_uid"] != ct.SOPInstanceUID for q in remaining)


def test_gate_needs_a_token(pacs_server):
    import httpx

    answer = httpx.post(f"{pacs_server.url}/gate/studies", content=b"x")
    assert answer.status_code == 401


def test_a_pacs_that_is_down_fails_the_job_clearly_and_keeps_its_files(tmp_path):
    settings = ServeSettings(
        data_dir=tmp_path,
        pacs=f"http://127.0.0.1:{free_port()}/dicom-web",
        pacs_retries=2,
        pacs_backoff_s=0.1,
    )
    server, stop = start_server(settings)
    try:
        with server.client() as client:
            job = client.post("/api/generate", json={"prompt": HEAD, "n": 2, "steps": 5, "pacs": True}).json()
            failed = server.wait(job["id"])
            assert failed["state"] == "failed"
            assert "after 3 attempt(s)" in failed["error"] and "2 DICOM file(s) are kept" in failed["error"]
            assert "\n" not in failed["error"]
            image = failed["results"]["images"][0]
            assert client.get(image["dicom"]).status_code == 200  # nothing lost
            again = client.post(f"/api/jobs/{job['id']}/push")
            assert again.status_code == 503 and "did not answer" in again.json()["detail"]
    finally:
        stop()
