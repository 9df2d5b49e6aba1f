"""The synthetic-image gate in front of a real Orthanc, fed real and radsynth-made DICOM."""

# ruff: noqa: F811 (fixtures imported from tests.serve.orthanc are test parameters by design)

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from dicomweb_client import DICOMwebClient
from pydicom.data import get_testdata_file

from radsynth.errors import InvalidInput, PacsUnavailable
from radsynth.provenance.detector import SyntheticDetector
from radsynth.serve.dicomweb import PacsClient
from radsynth.serve.gate import Gate, parse_multipart_related

from .orthanc import empty_orthanc, free_port, orthanc, synthetic_dicom  # noqa: F401

CT = Path(get_testdata_file("CT_small.dcm"))
MR = Path(get_testdata_file("MR_small.dcm"))
TRUNCATED = Path(get_testdata_file("MR_truncated.dcm"))  # pixel data cut short
# the request dicomweb-client's store_instances sends (its own encoder, its content type)
CONTENT_TYPE = 'multipart/related; type="application/dicom"; boundary="0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"'


def stow_body(parts: list[bytes]) -> bytes:
    return DICOMwebClient._encode_multipart_message(parts, CONTENT_TYPE)


def in_pacs(orthanc, study_uid: str) -> set[str]:
    """SOP Instance UIDs the PACS holds for a study (QIDO-RS)."""
    found = PacsClient(orthanc.dicomweb).search_instances(study_uid)
    return {item["00080018"]["Value"][0] for item in found}


def uids(path: Path) -> tuple[str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SOPInstanceUID


def closed_pacs() -> PacsClient:
    return PacsClient(f"http://127.0.0.1:{free_port()}/dicom-web", retries=2, backoff=0.05)


def test_mixed_stow_body(empty_orthanc, synthetic_dicom, tmp_path):
    synthetic = synthetic_dicom[0]
    instances = parse_multipart_related(
        stow_body([CT.read_bytes(), synthetic.read_bytes(), TRUNCATED.read_bytes(), b"not dicom"]),
        CONTENT_TYPE,
    )
    assert instances[0] == CT.read_bytes() and len(instances) == 4
    gate = Gate(PacsClient(empty_orthanc.dicomweb), tmp_path / "gate")
    report = gate.receive(instances, sender="modality-1")

    actions = [(item.action, item.verdict) for item in report.items]
    assert actions == [
        ("forwarded", "no-evidence"),
        ("quarantined", "synthetic-marked"),
        ("rejected", "unreadable"),
        ("rejected", "unreadable"),
    ]
    assert "pixel data" in report.items[2].reason and "DICOM" in report.items[3].reason
    ct_study, ct_sop = uids(CT)
    assert in_pacs(empty_orthanc, ct_study) == {ct_sop}

    study, sop = uids(synthetic)
    assert in_pacs(empty_orthanc, study) == set()
    kept = tmp_path / "gate" / "quarantine" / study
    assert (kept / f"{sop}.dcm").read_bytes() == synthetic.read_bytes()
    record = json.loads((kept / f"{sop}.json").read_text())
    assert record["verdict"] == "synthetic-marked" and record["sender"] == "modality-1"
    assert record["evidence"]["marking"]["conversion_type"] == "SYN" and record["time"]
    assert not list((tmp_path / "gate" / "incoming").iterdir())  # temp copies removed
    assert len((tmp_path / "gate" / "gate.jsonl").read_text().splitlines()) == 4

    assert report.status_code == 202
    body = report.stow_response()
    (accepted,) = body["00081199"]["Value"]
    assert accepted["00081155"]["Value"] == [ct_sop]
    failed = body["00081198"]["Value"]
    assert [f["00081197"]["Value"][0] for f in failed] == [0x0124, 0xC000, 0xC000]
    assert failed[0]["00081155"]["Value"] == [sop]
    assert pydicom.Dataset.from_json(body).ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ct_sop


def test_forward_tagged_policy(empty_orthanc, synthetic_dicom, tmp_path):
    synthetic = synthetic_dicom[0]
    gate = Gate(PacsClient(empty_orthanc.dicomweb), tmp_path / "gate", policy="forward-tagged")
    report = gate.receive([synthetic.read_bytes()], sender="research-pc")
    assert report.items[0].action == "forwarded-tagged" and report.status_code == 200
    assert report.stow_response()["00081199"]["Value"][0]["00081196"]["Value"] == [0xB000]

    study, sop = uids(synthetic)
    (stored,) = PacsClient(empty_orthanc.dicomweb).retrieve_study(study)
    assert stored.SOPInstanceUID == sop
    assert stored.ImageComments.startswith("radsynth gate: synthetic (synthetic-marked)")
    assert stored.ContentQualification == "RESEARCH"
    log = [json.loads(line) for line in (tmp_path / "gate" / "gate.jsonl").read_text().splitlines()]
    assert any(e.get("action") == "forwarded-tagged" and e["sender"] == "research-pc" for e in log)
    assert any(e.get("event") and e["evidence"]["marking"] for e in log)  # the evidence, logged
    assert not list((tmp_path / "gate" / "quarantine").iterdir())


def test_stripped_marking_is_caught_by_the_watermark(empty_orthanc, synthetic_dicom, tmp_path):
    """A de-identification step that drops the synthetic attributes does not get it through."""
    ds = pydicom.dcmread(synthetic_dicom[1])
    del ds.ConversionType, ds.DerivationDescription
    buffer = BytesIO()
    ds.save_as(buffer)
    gate = Gate(PacsClient(empty_orthanc.dicomweb), tmp_path / "gate", detector=SyntheticDetector.load(None))
    report = gate.receive([buffer.getvalue(), MR.read_bytes()])
    assert [(i.action, i.verdict) for i in report.items] == [
        ("quarantined", "watermark"),
        ("forwarded", "no-evidence"),
    ]
    assert in_pacs(empty_orthanc, ds.StudyInstanceUID) == set()


def test_pacs_down_keeps_instances_pending_then_flushes(empty_orthanc, tmp_path):
    gate = Gate(closed_pacs(), tmp_path / "gate")
    report = gate.receive([CT.read_bytes(), MR.read_bytes()], sender="ct-1")
    assert [item.action for item in report.items] == ["pending", "pending"]
    assert "did not answer" in report.items[0].reason and report.status_code == 409
    assert report.stow_response()["00081198"]["Value"][0]["00081197"]["Value"] == [0x0110]
    pending = tmp_path / "gate" / "pending"
    assert sorted(p.name for p in pending.glob("*.dcm")) == sorted(f"{uids(p)[1]}.dcm" for p in (CT, MR))

    with pytest.raises(PacsUnavailable):  # still down: nothing lost
        gate.flush_pending()
    assert len(list(pending.glob("*.dcm"))) == 2

    gate.pacs = PacsClient(empty_orthanc.dicomweb)  # the PACS is back
    assert gate.flush_pending() == 2
    assert not list(pending.iterdir())
    for path in (CT, MR):
        study, sop = uids(path)
        assert in_pacs(empty_orthanc, study) == {sop}
    assert gate.flush_pending() == 0


@pytest.mark.parametrize(
    ("content_type", "body", "problem"),
    [
        ('multipart/related; type="application/dicom"', b"--x\r\n\r\nDICM\r\n--x--", "no boundary"),
        ("application/dicom", b"DICM", "must be multipart/related"),
        (
            "multipart/related; boundary=x",
            b"--x\r\nContent-Type: application/json\r\n\r\n{}\r\n--x--",
            "application/json",
        ),
        ("multipart/related; boundary=x", b"--x\r\nContent-Type: application/dicom\r\n\r\nDI", "truncated"),
        ("multipart/related; boundary=x", b"--x--", "no DICOM instance"),
    ],
)
def test_bad_stow_bodies_are_refused(content_type, body, problem):
    with pytest.raises(InvalidInput, match=problem):
        parse_multipart_related(body, content_type)


def test_parts_without_headers_take_the_body_type():
    body = (
        b"preamble\r\n--b\r\n\r\nfirst"
        b"\r\n--b\r\nContent-Type: application/dicom\r\n\r\nsecond"
        b"\r\n--b--\r\nepilogue"
    )
    assert parse_multipart_related(body, 'multipart/related; type="application/dicom"; boundary=b') == [
        b"first",
        b"second",
    ]


def test_oversized_instances_are_rejected_unread(orthanc, tmp_path):
    gate = Gate(PacsClient(orthanc.dicomweb), tmp_path / "gate", max_bytes=1000)
    (item,) = gate.receive([CT.read_bytes()]).items
    assert item.action == "rejected" and "too large" in item.reason


@pytest.fixture(scope="module")
def unmarked_dicom(tmp_path_factory) -> Path:
    """A real output of the shipped VAE written as plain DICOM: no marking, no watermark,
    so only the detector can say anything about it."""
    from radsynth.generate import load_pipeline
    from radsynth.io import Image, write_dicom

    image = load_pipeline("demo-ct-mr-64", "vae", device="cpu").generate("axial chest CT", n=1, seed=5)[0]
    return write_dicom(Image(image.array, modality="CT"), tmp_path_factory.mktemp("vae") / "vae.dcm")


def test_what_only_the_detector_suspects_is_forwarded_with_a_note(empty_orthanc, unmarked_dicom, tmp_path):
    gate = Gate(PacsClient(empty_orthanc.dicomweb), tmp_path / "gate", detector=SyntheticDetector.load(None))
    report = gate.receive([unmarked_dicom.read_bytes()], sender="ct-1")
    [item] = report.items
    assert (item.action, item.verdict, report.status_code) == ("forwarded-noted", "suspect", 200)
    assert report.stow_response()["00081199"]["Value"][0]["00081196"]["Value"] == [0xB000]  # coerced
    study, sop = uids(unmarked_dicom)
    assert in_pacs(empty_orthanc, study) == {sop}
    (stored,) = PacsClient(empty_orthanc.dicomweb).retrieve_study(study)
    assert stored.ImageComments.startswith("radsynth gate: suspect, not proof: detector alone")
    log = [json.loads(line) for line in (tmp_path / "gate" / "gate.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "suspect, forwarded" and e["evidence"]["detector"]["applies"] for e in log)
    assert not list((tmp_path / "gate" / "quarantine").iterdir())


def test_a_real_ct_the_detector_scores_high_reaches_the_pacs(empty_orthanc, tmp_path):
    """pydicom's CT_small is a real CT the first (demo-only) detector scored 0.95: whatever
    the detector says, under the default policy it alone never keeps a patient's image
    from the PACS."""
    gate = Gate(PacsClient(empty_orthanc.dicomweb), tmp_path / "gate", detector=SyntheticDetector.load(None))
    [item] = gate.receive([CT.read_bytes()]).items
    assert item.verdict in ("suspect", "no-evidence") and item.action in ("forwarded-noted", "forwarded")
    assert in_pacs(empty_orthanc, uids(CT)[0]) == {uids(CT)[1]}


def test_the_suspect_policy_can_quarantine_or_forward_as_is(empty_orthanc, unmarked_dicom, tmp_path):
    detector = SyntheticDetector.load(None)
    pacs = PacsClient(empty_orthanc.dicomweb)
    held = Gate(pacs, tmp_path / "held", detector=detector, suspect_policy="quarantine")
    [item] = held.receive([unmarked_dicom.read_bytes()]).items
    assert (item.action, item.verdict) == ("quarantined", "suspect") and "not proof" in item.reason
    assert in_pacs(empty_orthanc, uids(unmarked_dicom)[0]) == set()
    plain = Gate(pacs, tmp_path / "plain", detector=detector, suspect_policy="forward")
    [item] = plain.receive([unmarked_dicom.read_bytes()]).items
    assert (item.action, item.verdict) == ("forwarded", "suspect")
    (stored,) = pacs.retrieve_study(uids(unmarked_dicom)[0])
    assert "ImageComments" not in stored or "radsynth gate" not in stored.ImageComments
    with pytest.raises(InvalidInput, match="suspect policy must be one of"):
        Gate(pacs, tmp_path / "bad", suspect_policy="tag")


def test_real_images_outside_the_detectors_domain_pass_without_a_guess(empty_orthanc, tmp_path):
    """A JPEG 2000 nuclear-medicine image (NM) and a colour ultrasound: the detector learnt
    neither modality nor colour, so it is not asked."""
    files = [Path(get_testdata_file(name)) for name in ("JPEG2000.dcm", "examples_jpeg2k.dcm")]
    gate = Gate(PacsClient(empty_orthanc.dicomweb), tmp_path / "gate", detector=SyntheticDetector.load(None))
    report = gate.receive([f.read_bytes() for f in files])
    assert [(i.action, i.verdict) for i in report.items] == [("forwarded", "no-evidence")] * 2
