"""PacsClient and ``radsynth pacs`` against a real Orthanc, with real and radsynth-made DICOM."""

# ruff: noqa: F811 (fixtures imported from tests.serve.orthanc are test parameters by design)

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radsynth.cli import main
from radsynth.errors import PacsUnavailable
from radsynth.provenance.verify import verify_file
from radsynth.serve.dicomweb import PacsClient, PacsRequestError

from .orthanc import empty_orthanc, free_port, orthanc, synthetic_dicom  # noqa: F401

CT = get_testdata_file("CT_small.dcm")
MR = get_testdata_file("MR_small.dcm")


def _values(items: list[dict], tag: str) -> set[str]:
    return {item[tag]["Value"][0] for item in items}


def test_store_search_retrieve_real_and_synthetic(empty_orthanc, synthetic_dicom, tmp_path):
    pacs = PacsClient(empty_orthanc.dicomweb)
    # one synthetic output only: see test_generated_outputs_share_a_study_across_patients
    result = pacs.store([CT, MR, synthetic_dicom[0]])
    assert (result["stored"], result["failed"]) == (3, 0)

    real = [pydicom.dcmread(p) for p in (CT, MR)]
    synthetic = [pydicom.dcmread(synthetic_dicom[0])]
    expected_studies = {ds.StudyInstanceUID for ds in real + synthetic}
    assert _values(pacs.search_studies(), "0020000D") == expected_studies
    assert _values(pacs.search_studies(PatientID=real[0].PatientID), "0020000D") == {real[0].StudyInstanceUID}
    found = pacs.search_instances(synthetic[0].StudyInstanceUID)
    assert _values(found, "00080018") == {ds.SOPInstanceUID for ds in synthetic}

    (back,) = pacs.retrieve_study(real[0].StudyInstanceUID)
    assert back.SOPInstanceUID == real[0].SOPInstanceUID
    np.testing.assert_array_equal(back.pixel_array, real[0].pixel_array)

    files = pacs.download_study(synthetic[0].StudyInstanceUID, tmp_path / "pulled")
    assert sorted(p.name for p in files) == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in synthetic)
    assert not list((tmp_path / "pulled").glob(".partial-*"))
    for original in synthetic:
        copy = pydicom.dcmread(tmp_path / "pulled" / f"{original.SOPInstanceUID}.dcm")
        np.testing.assert_array_equal(copy.pixel_array, original.pixel_array)
    # the marking survives the round trip through the PACS
    assert verify_file(files[0]).verdict == "synthetic-marked"


def test_a_generated_batch_is_one_study_of_one_synthetic_patient(empty_orthanc, synthetic_dicom):
    pacs = PacsClient(empty_orthanc.dicomweb)
    assert pacs.store(synthetic_dicom)["stored"] == 2
    first, second = (pydicom.dcmread(p) for p in synthetic_dicom)
    assert first.PatientID == second.PatientID and first.PatientID.startswith("SYN-")
    assert len(pacs.retrieve_study(first.StudyInstanceUID)) == 2


def test_unknown_study_is_refused_at_once(orthanc):
    pacs = PacsClient(orthanc.dicomweb, retries=3, backoff=1.0)
    start = time.monotonic()
    with pytest.raises(PacsRequestError, match="HTTP 404") as err:
        pacs.retrieve_study("1.2.3.4.5.6.7")
    assert time.monotonic() - start < 1.0  # a 404 is the caller's: not retried
    assert "\n" not in str(err.value) and orthanc.dicomweb in str(err.value)


def test_pacs_down_is_retried_with_backoff_then_one_line():
    url = f"http://127.0.0.1:{free_port()}/dicom-web"  # nothing listens there
    pacs = PacsClient(url, retries=3, backoff=0.1)
    start = time.monotonic()
    with pytest.raises(PacsUnavailable) as err:
        pacs.search_studies()
    elapsed = time.monotonic() - start
    assert elapsed >= 0.1 + 0.2 + 0.4
    message = str(err.value)
    assert url in message and "4 attempt(s)" in message and "connection refused" in message
    assert "\n" not in message and "Traceback" not in message and len(message) < 300


class _Overloaded(BaseHTTPRequestHandler):
    """A server that is up but answers 503 to everything (a PACS under maintenance)."""

    hits = 0

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).hits += 1
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_server_errors_are_retried():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Overloaded)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        with pytest.raises(PacsUnavailable, match="HTTP 503"):
            PacsClient(url, retries=2, backoff=0.05).search_studies()
        assert _Overloaded.hits == 3
    finally:
        server.shutdown()
        server.server_close()


def test_cli_push_search_pull(empty_orthanc, synthetic_dicom, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich's table width: a UID on one line
    url = empty_orthanc.dicomweb
    folder = synthetic_dicom[0].parent  # also holds generation.json and contact-sheet.png
    assert main(["pacs", "push", url, CT, str(folder)]) == 0
    out, err = capsys.readouterr()
    assert "stored 3 instance(s)" in out and "2 not DICOM" in out
    assert "generation.json" in err and "contact-sheet.png" in err

    ct = pydicom.dcmread(CT)
    assert main(["pacs", "search", url, "--patient", ct.PatientID]) == 0
    out, _ = capsys.readouterr()
    assert ct.StudyInstanceUID in out and "1 study" in out

    assert main(["pacs", "pull", url, ct.StudyInstanceUID, "-o", str(tmp_path / "pulled")]) == 0
    (pulled,) = (tmp_path / "pulled").glob("*.dcm")
    assert pulled.name == f"{ct.SOPInstanceUID}.dcm"
    np.testing.assert_array_equal(pydicom.dcmread(pulled).pixel_array, ct.pixel_array)


def test_cli_reports_a_down_pacs_in_one_line(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    code = main(["pacs", "pull", url, "1.2.3", "-o", str(tmp_path), "--retries", "1"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip().count("\n") == 0 and url in err and "did not answer" in err
