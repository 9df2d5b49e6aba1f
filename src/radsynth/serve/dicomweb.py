"""A DICOMweb client for a PACS (QIDO-RS search, WADO-RS retrieve, STOW-RS store).

``dicomweb_client`` speaks the protocol; this wrapper adds what a hospital link needs and
the library leaves to the caller: every call retries connection errors and server-side
failures (5xx, 408, 429) with exponential backoff, then raises ``PacsUnavailable`` in one
line naming the URL; a request the server refuses as the caller's fault (other 4xx) fails
at once with ``PacsRequestError``, since repeating it cannot help.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

import pydicom
import requests
from dicomweb_client import DICOMwebClient

from radsynth.errors import InvalidInput, PacsUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")
RETRIABLE_STATUS = {408, 429}  # timeouts and rate limits: the server's state, not the request's


class PacsRequestError(InvalidInput):
    """The PACS answered, and refused the request itself (4xx): fix the request, do not retry.

    ``response`` is the HTTP response (status, body) for a caller that wants the details.
    """

    def __init__(self, url: str, what: str, response: requests.Response) -> None:
        body = " ".join((response.text or "").split())[:200]
        status = f"{response.status_code} {response.reason or ''}".strip()
        super().__init__(f"PACS {url} refused to {what}: HTTP {status}" + (f" ({body})" if body else ""))
        self.response = response


class PacsClient:
    """QIDO / WADO / STOW against one DICOMweb root (e.g. ``http://pacs:8042/dicom-web``).

    ``retries`` extra attempts follow the first, waiting ``backoff * 2**k`` seconds before
    attempt k+1 (0.5, 1, 2 s by default), so a PACS restarting or briefly overloaded is
    ridden out while one that is down fails in a few seconds. ``timeout`` (s) bounds each
    HTTP request; ``headers`` go with every request (e.g. ``Authorization``).
    """

    def __init__(
        self,
        url: str,
        retries: int = 3,
        backoff: float = 0.5,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"PACS URL must start with http:// or https://, got {url!r}")
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise InvalidInput(
                f"retries and backoff must be >= 0 and timeout > 0 (got {retries}, {backoff}, {timeout})"
            )
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self._client = DICOMwebClient(self.url, headers=headers, timeout=timeout)
        # one retry policy, ours: the library's own would multiply attempts and ignore refusals
        self._client.set_http_retry_params(retry=False)

    def search_studies(self, **filters: Any) -> list[dict[str, Any]]:
        """Studies matching ``filters`` (DICOM keywords, e.g. ``PatientID="X"``, wildcards as the
        PACS allows), as DICOM JSON objects."""
        return self._call("search studies", lambda: self._client.search_for_studies(search_filters=filters))

    def search_instances(self, study_uid: str) -> list[dict[str, Any]]:
        """Every instance of one study, as DICOM JSON objects."""
        return self._call(
            f"search instances of study {study_uid}",
            lambda: self._client.search_for_instances(study_instance_uid=study_uid),
        )

    def retrieve_study(self, study_uid: str) -> list[pydicom.Dataset]:
        """Every instance of one study, decoded."""
        return self._call(
            f"retrieve study {study_uid}", lambda: self._client.retrieve_study(study_instance_uid=study_uid)
        )

    def download_study(self, study_uid: str, folder: str | Path) -> list[Path]:
        """Retrieve a study into ``folder/<SOPInstanceUID>.dcm``; each file is written to a temp
        name and renamed, so a crash never leaves a half-written file under a real name."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for ds in self.retrieve_study(study_uid):
            buffer = BytesIO()
            pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
            paths.append(write_atomic(folder / f"{safe_uid(ds.SOPInstanceUID)}.dcm", buffer.getvalue()))
        return paths

    def store(self, items: Iterable[pydicom.Dataset | bytes | str | Path]) -> dict[str, Any]:
        """STOW-RS: store datasets, encoded DICOM bytes or files in one request.

        Returns ``{"stored": n, "failed": n, "stored_uids": [...], "failures": [{"sop_uid",
        "reason"}]}`` from the PACS's answer; a PACS that refuses every instance (409) is an
        answer too, not an exception.
        """
        datasets = [_as_dataset(item) for item in items]
        if not datasets:
            return {"stored": 0, "failed": 0, "stored_uids": [], "failures": []}
        try:
            answer = self._call(
                f"store {len(datasets)} instance(s)", lambda: self._client.store_instances(datasets)
            )
        except PacsRequestError as err:
            if err.response.status_code != 409:
                raise
            answer = pydicom.Dataset.from_json(err.response.json())
        return _store_counts(answer, datasets)

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run ``request``, retrying what the server or network may fix on its own."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return request()
            except requests.HTTPError as err:
                status = err.response.status_code if err.response is not None else 0
                problem = f"HTTP {status} {getattr(err.response, 'reason', '')}".strip()
                if err.response is not None and status < 500 and status not in RETRIABLE_STATUS:
                    raise PacsRequestError(self.url, what, err.response) from None
            except (requests.ConnectionError, requests.Timeout) as err:
                problem = _one_line(err)
            logger.info("PACS %s: %s failed (attempt %d): %s", self.url, what, attempt + 1, problem)
        raise PacsUnavailable(
            f"PACS {self.url} did not answer {what} after {self.retries + 1} attempt(s): {problem}"
        )


def _one_line(err: Exception) -> str:
    """A requests error as one short line: the innermost reason, not the urllib3 chain."""
    reason: Any = err
    while reason.args and isinstance(reason.args[0], Exception):
        reason = reason.args[0]
    text = str(getattr(reason, "reason", reason))
    if "Connection refused" in text:
        return "connection refused"
    return f"{type(err).__name__}: {' '.join(text.split())}"[:200]


def _as_dataset(item: pydicom.Dataset | bytes | str | Path) -> pydicom.Dataset:
    if isinstance(item, pydicom.Dataset):
        return item
    source = BytesIO(item) if isinstance(item, bytes) else item
    try:
        return pydicom.dcmread(source)
    except Exception as err:  # pydicom raises several types for a file that is not DICOM
        name = "<bytes>" if isinstance(item, bytes) else str(item)
        raise InvalidInput(f"not a DICOM file ({type(err).__name__}: {err})"[:200], path=name) from None


def _store_counts(answer: pydicom.Dataset, datasets: list[pydicom.Dataset]) -> dict[str, Any]:
    stored = [str(item.ReferencedSOPInstanceUID) for item in answer.get("ReferencedSOPSequence", [])]
    failures = [
        {
            "sop_uid": str(item.get("ReferencedSOPInstanceUID", "")),
            "reason": int(item.get("FailureReason", 0)),
        }
        for item in answer.get("FailedSOPSequence", [])
    ]
    if not stored and not failures:  # a server that answers 200 with an empty body stored everything
        stored = [str(ds.SOPInstanceUID) for ds in datasets]
    return {"stored": len(stored), "failed": len(failures), "stored_uids": stored, "failures": failures}


def safe_uid(uid: Any) -> str:
    """A UID fit for a file name: digits and dots only, so a crafted UID cannot climb out of
    the folder (``../``) or name a device."""
    text = str(uid).strip()
    if not text or len(text) > 64 or any(c not in "0123456789." for c in text):
        raise InvalidInput(f"not a valid DICOM UID: {text[:80]!r}")
    return text


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path
