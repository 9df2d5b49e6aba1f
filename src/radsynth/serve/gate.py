"""The synthetic-image gate: a STOW-RS front door that keeps synthetic images out of a PACS.

Each incoming instance gets a ``verify`` verdict. Those without evidence (``no-evidence``)
go on to the PACS. Proven synthetic ones (``synthetic-marked``, ``watermark``) are
quarantined with their evidence, or, under policy ``forward-tagged``, forwarded with
attributes that say so. What happens to ``suspect`` ones (the detector alone, which is
not proof and can be wrong about a real patient) is its own policy, ``suspect_policy``:
``forward-noted`` (the default) forwards them with Image Comments saying so and logs it,
``quarantine`` holds them like proof, ``forward`` lets them through with only the log
line. Malformed instances are rejected with the reason; the gate never
crashes on what a sender posts. When the PACS is down, real instances wait on disk in
``pending/`` (nothing is lost) until ``flush_pending`` forwards them.

Folder layout (``folder``)::

    quarantine/<StudyInstanceUID>/<SOPInstanceUID>.dcm   the bytes as received
    quarantine/<StudyInstanceUID>/<SOPInstanceUID>.json  verdict, evidence, sender, time
    pending/<SOPInstanceUID>.dcm (+ .json)              waiting for the PACS
    refused/<SOPInstanceUID>.dcm (+ .json)              pending ones the PACS later refused
    gate.jsonl                                           one line per decision
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import Message
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

import pydicom

from radsynth.errors import InvalidInput, PacsUnavailable
from radsynth.provenance.verify import MAX_BYTES, verify_file
from radsynth.serve.dicomweb import PacsClient, PacsRequestError, safe_uid, write_atomic

logger = logging.getLogger(__name__)
Policy = Literal["quarantine", "forward-tagged"]
POLICIES = ("quarantine", "forward-tagged")
SuspectPolicy = Literal["forward-noted", "quarantine", "forward"]
SUSPECT_POLICIES = ("forward-noted", "quarantine", "forward")
ACCEPTED = ("forwarded", "forwarded-tagged", "forwarded-noted")
COERCING = ("forwarded-tagged", "forwarded-noted")
# STOW-RS failure reasons (PS3.18 Table 10.5.3-1 and the PS3.7 status codes it draws on)
CANNOT_UNDERSTAND = 0xC000  # malformed: not DICOM, no UIDs, unreadable pixels
NOT_AUTHORIZED = 0x0124  # quarantined: the gate's policy refuses synthetic images
PROCESSING_FAILURE = 0x0110  # pending: the PACS did not answer; kept and retried later
COERCED = 0xB000  # warning: stored, but with attributes changed (the synthetic tag)


@dataclass
class GateItem:
    """What the gate did with one instance (``reason`` is empty when it was forwarded as is)."""

    sop_uid: str
    study_uid: str
    action: str  # forwarded | quarantined | forwarded-tagged | forwarded-noted | rejected | pending
    verdict: str
    reason: str = ""
    sop_class_uid: str = ""
    failure_code: int = 0  # STOW-RS FailureReason when not accepted


@dataclass
class GateReport:
    """Per-instance decisions of one ``Gate.receive`` call."""

    items: list[GateItem] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        """200 when every instance reached the PACS, 409 when none did, 202 otherwise (PS3.18)."""
        accepted = sum(item.action in ACCEPTED for item in self.items)
        if self.items and accepted == len(self.items):
            return 200
        return 409 if accepted == 0 else 202

    def stow_response(self) -> dict[str, Any]:
        """The STOW-RS response body in DICOM JSON (PS3.18 10.5.3): ReferencedSOPSequence for
        instances stored, FailedSOPSequence with FailureReason for the rest."""
        referenced, failed = [], []
        for item in self.items:
            entry = {
                "00081150": _element("UI", item.sop_class_uid),
                "00081155": _element("UI", item.sop_uid),
            }
            if item.action in ACCEPTED:
                if item.action in COERCING:
                    entry["00081196"] = _element("US", COERCED)
                referenced.append(entry)
            else:
                failed.append({**entry, "00081197": _element("US", item.failure_code or PROCESSING_FAILURE)})
        body: dict[str, Any] = {}
        if referenced:
            body["00081199"] = {"vr": "SQ", "Value": referenced}
        if failed:
            body["00081198"] = {"vr": "SQ", "Value": failed}
        return body

    def to_dict(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "items": [asdict(item) for item in self.items]}


def _element(vr: str, value: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]} if value not in ("", None) else {"vr": vr}


def parse_multipart_related(body: bytes, content_type: str) -> list[bytes]:
    """The DICOM parts of a STOW-RS request body (``multipart/related; type="application/dicom";
    boundary=...``, RFC 2387 / PS3.18 8.6.1.2), as raw bytes. Anything else is ``InvalidInput``:
    the sender must fix the request, the gate will not guess."""
    header = Message()
    header["content-type"] = content_type or ""
    if header.get_content_type() != "multipart/related":
        raise InvalidInput(f"STOW-RS body must be multipart/related, got {content_type!r}")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise InvalidInput("multipart/related content type has no boundary parameter")
    default_type = str(header.get_param("type") or "application/dicom").lower()
    # a delimiter is CRLF "--" boundary (RFC 2046 5.1.1); the CRLF belongs to the delimiter,
    # so a leading one is added for a body that opens with the first delimiter
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts, closed = [], False
    for number, chunk in enumerate(chunks[1:], start=1):
        if chunk.startswith(b"--"):
            closed = True
            break
        line_end = chunk.find(b"\r\n")
        if line_end < 0:
            raise InvalidInput(f"multipart part {number} is cut short after its boundary")
        rest = chunk[line_end + 2 :]
        if rest.startswith(b"\r\n"):  # no part headers: the part has the body's type
            headers, content = b"", rest[2:]
        else:
            headers, found, content = rest.partition(b"\r\n\r\n")
            if not found:
                raise InvalidInput(f"multipart part {number} has no blank line after its headers")
        part_type = _part_type(headers) or default_type
        if part_type != "application/dicom":
            raise InvalidInput(f"multipart part {number} is {part_type!r}, the gate takes application/dicom")
        parts.append(content)
    if not closed:
        raise InvalidInput(f"multipart body has no closing boundary --{boundary}-- (truncated upload?)")
    if not parts:
        raise InvalidInput("multipart body holds no DICOM instance")
    return parts


def _part_type(headers: bytes) -> str:
    for line in headers.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-type":
            return value.split(";")[0].strip().lower()
    return ""


class Gate:
    """Checks instances before a PACS sees them (see the module docstring for what goes where).

    ``policy`` is what happens to proven synthetic instances, ``suspect_policy`` to those
    only the detector suspects (see the module docstring).
    ``detector`` is a ``SyntheticDetector`` (None: marking and watermark evidence only);
    ``audit`` the ``AuditIndex`` to consult (None: none); ``max_bytes`` the largest instance
    checked (larger ones are rejected, since unchecked means not forwarded). ``receive`` may
    be called from several threads (temp names are unique, the log is locked).
    """

    def __init__(
        self,
        pacs: PacsClient,
        folder: str | Path,
        policy: Policy = "quarantine",
        detector: Any | None = None,
        audit: Any | None = None,
        max_bytes: int = MAX_BYTES,
        suspect_policy: SuspectPolicy = "forward-noted",
    ) -> None:
        if policy not in POLICIES:
            raise InvalidInput(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if suspect_policy not in SUSPECT_POLICIES:
            raise InvalidInput(
                f"suspect policy must be one of {', '.join(SUSPECT_POLICIES)}, got {suspect_policy!r}"
            )
        self.pacs = pacs
        self.folder = Path(folder)
        self.policy = policy
        self.suspect_policy = suspect_policy
        self.detector = detector
        self.audit = audit
        self.max_bytes = max_bytes
        self._log_lock = threading.Lock()
        for name in ("incoming", "quarantine", "pending"):
            (self.folder / name).mkdir(parents=True, exist_ok=True)

    def receive(self, instances: list[bytes], sender: str = "") -> GateReport:
        """Check every instance, forward what may go in one STOW-RS request, keep the rest."""
        checked = [self._check(data, sender) for data in instances]
        outgoing = [(item, data) for item, data in checked if data is not None]
        if outgoing:
            self._forward(outgoing, sender)
        report = GateReport([item for item, _ in checked])
        for item in report.items:
            self._log({"sender": sender, **asdict(item)})
        return report

    def flush_pending(self) -> int:
        """Forward what waits in ``pending/``; returns how many the PACS stored. Raises
        ``PacsUnavailable`` (files kept) while the PACS is still down; instances it refuses
        move to ``refused/`` with the reason, so they do not block the queue."""
        pending = self.folder / "pending"
        forwarded = 0
        files = sorted(pending.glob("*.dcm"))
        for start in range(0, len(files), 50):  # bounded requests and memory
            batch = files[start : start + 50]
            result = self.pacs.store(batch)
            stored = set(result["stored_uids"])
            reasons = {f["sop_uid"]: f["reason"] for f in result["failures"]}
            for path in batch:
                meta = path.with_suffix(".json")
                if path.stem in stored:
                    forwarded += 1
                    path.unlink()
                    meta.unlink(missing_ok=True)
                    self._log({"sop_uid": path.stem, "action": "forwarded", "reason": "flushed from pending"})
                else:
                    reason = f"PACS refused it (FailureReason 0x{reasons.get(path.stem, 0):04X})"
                    refused = self.folder / "refused"
                    refused.mkdir(exist_ok=True)
                    os.replace(path, refused / path.name)
                    record = json.loads(meta.read_text()) if meta.is_file() else {}
                    write_atomic(refused / meta.name, _json({**record, "refused": reason}))
                    meta.unlink(missing_ok=True)
                    self._log({"sop_uid": path.stem, "action": "rejected", "reason": reason})
        return forwarded

    def release(self, sop_uid: str, by: str, why: str) -> dict[str, Any]:
        """Forward a quarantined instance after a person judged it real (the detector's
        false positives land in quarantine too); the decision stays in ``released/`` and
        the log. Raises ``InvalidInput`` for an unknown instance, ``PacsUnavailable`` (the
        instance stays quarantined) while the PACS is down."""
        sop_uid = safe_uid(sop_uid)
        found = sorted((self.folder / "quarantine").glob(f"*/{sop_uid}.dcm"))
        if not found or not why.strip():
            raise InvalidInput(
                f"no quarantined instance {sop_uid}" if not found else "say why it is released"
            )
        path = found[0]
        result = self.pacs.store([path])
        if sop_uid not in result["stored_uids"]:
            raise InvalidInput(f"the PACS refused {sop_uid}: {result['failures']}")
        record = {**json.loads(path.with_suffix(".json").read_text()), "released_by": by, "why": why}
        released = self.folder / "released"
        write_atomic(released / f"{sop_uid}.json", _json({**record, "released": _now()}))
        path.unlink()
        path.with_suffix(".json").unlink()
        self._log({"sop_uid": sop_uid, "action": "released", "reason": why, "by": by})
        return record

    def _check(self, data: bytes, sender: str) -> tuple[GateItem, bytes | None]:
        """One instance's decision, and the bytes to forward (None: not forwarded)."""
        if len(data) > self.max_bytes:  # before parsing: the limit is there to spare memory and time
            reason = f"too large to check ({len(data) / 1e6:.0f} MB > limit); not forwarded unchecked"
            return GateItem("", "", "rejected", "unreadable", reason, failure_code=CANNOT_UNDERSTAND), None
        try:
            ds = pydicom.dcmread(BytesIO(data))
            sop_uid, study_uid = safe_uid(ds.SOPInstanceUID), safe_uid(ds.StudyInstanceUID)
            sop_class = str(ds.get("SOPClassUID", ""))
        except Exception as err:  # anything a sender posts must end in a reason, not a crash
            reason = f"not readable DICOM ({type(err).__name__}: {err})"[:300]
            return GateItem("", "", "rejected", "unreadable", reason, failure_code=CANNOT_UNDERSTAND), None
        verdict = self._verify(data)
        item = GateItem(sop_uid, study_uid, "forwarded", verdict.verdict, sop_class_uid=sop_class)
        if verdict.verdict == "unreadable":
            item.action, item.failure_code = "rejected", CANNOT_UNDERSTAND
            item.reason = f"cannot be checked: {verdict.evidence.get('problem', 'unreadable')}"
            return item, None
        if not verdict.synthetic and not verdict.suspect:
            return item, data
        policy = self.policy if verdict.synthetic else self.suspect_policy
        record = {
            "sop_uid": sop_uid,
            "study_uid": study_uid,
            "verdict": verdict.verdict,
            "evidence": verdict.evidence,
            "sender": sender,
            "time": _now(),
            "policy": policy,
        }
        what = "synthetic" if verdict.synthetic else "suspect, not proof"
        if policy == "quarantine":
            where = self.folder / "quarantine" / study_uid
            write_atomic(where / f"{sop_uid}.dcm", data)
            write_atomic(where / f"{sop_uid}.json", _json(record))
            item.action, item.failure_code = "quarantined", NOT_AUTHORIZED
            item.reason = f"{what} ({verdict.verdict}); quarantined"
            return item, None
        if verdict.suspect:
            return self._forward_suspect(item, ds, data, record, sender)
        logger.warning("gate: forwarding synthetic %s (%s) from %r, tagged", sop_uid, verdict.verdict, sender)
        self._log({**record, "event": "synthetic, tagged for forwarding"})
        item.action, item.reason = "forwarded-tagged", f"synthetic ({verdict.verdict}); forwarded tagged"
        return item, _tagged(ds, verdict.verdict)

    def _forward_suspect(
        self, item: GateItem, ds: pydicom.Dataset, data: bytes, record: dict[str, Any], sender: str
    ) -> tuple[GateItem, bytes]:
        """A suspect instance goes on (the detector alone is no proof), logged, and under
        ``forward-noted`` with Image Comments that say what the detector thought."""
        reason = str(record["evidence"].get("reason", "suspect"))
        logger.warning("gate: forwarding suspect %s from %r (%s)", item.sop_uid, sender, reason)
        self._log({**record, "event": "suspect, forwarded"})
        if record["policy"] == "forward":
            item.reason = f"suspect, not proof ({reason}); forwarded as is"
            return item, data
        item.action, item.reason = "forwarded-noted", f"suspect, not proof ({reason}); forwarded with a note"
        return item, _noted(ds, f"radsynth gate: suspect, not proof: {reason}")

    def _verify(self, data: bytes) -> Any:
        """``verify_file`` on a private temp copy (verify reads files; the copy is removed)."""
        handle, temp = tempfile.mkstemp(dir=self.folder / "incoming", suffix=".dcm")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            return verify_file(temp, detector=self.detector, audit=self.audit, max_bytes=self.max_bytes)
        finally:
            Path(temp).unlink(missing_ok=True)

    def _forward(self, outgoing: list[tuple[GateItem, bytes]], sender: str) -> None:
        """One STOW-RS request for everything that may go in; on a PACS that is down, the
        instances wait in ``pending/``."""
        try:
            result = self.pacs.store([data for _, data in outgoing])
        except (PacsUnavailable, PacsRequestError) as err:
            for item, data in outgoing:
                if isinstance(err, PacsRequestError):
                    item.action, item.reason, item.failure_code = "rejected", str(err), PROCESSING_FAILURE
                    continue
                record = {"sop_uid": item.sop_uid, "study_uid": item.study_uid, "sender": sender}
                write_atomic(self.folder / "pending" / f"{item.sop_uid}.dcm", data)
                write_atomic(
                    self.folder / "pending" / f"{item.sop_uid}.json", _json({**record, "time": _now()})
                )
                item.action, item.failure_code = "pending", PROCESSING_FAILURE
                item.reason = f"kept in pending/ for a later flush: {err}"
            return
        reasons = {f["sop_uid"]: f["reason"] for f in result["failures"]}
        for item, _ in outgoing:
            if item.sop_uid in reasons:
                item.action, item.failure_code = "rejected", reasons[item.sop_uid] or PROCESSING_FAILURE
                item.reason = f"PACS refused it (FailureReason 0x{item.failure_code:04X})"

    def _log(self, record: dict[str, Any]) -> None:
        line = json.dumps({"time": _now(), **record}, default=str)
        with self._log_lock, open(self.folder / "gate.jsonl", "a", encoding="utf-8") as log:
            log.write(line + "\n")


def _tagged(ds: pydicom.Dataset, verdict: str) -> bytes:
    """The instance re-encoded with attributes that say the gate found it synthetic."""
    ds.ContentQualification = "RESEARCH"
    return _noted(ds, f"radsynth gate: synthetic ({verdict})")


def _noted(ds: pydicom.Dataset, note: str) -> bytes:
    """The instance re-encoded with ``note`` leading its Image Comments."""
    old = str(ds.get("ImageComments", "") or "")
    ds.ImageComments = f"{note}; {old}"[:10240] if old else note  # LT holds 10240 chars
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=2, default=str).encode("utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
