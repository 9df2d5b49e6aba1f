"""``verify``: for any file, is it synthetic, and on what evidence?

Proof first, then suspicion, each verdict reported with what backs it:

1. ``synthetic-marked`` (proof): the file's metadata says so (radsynth's DICOM
   attributes, PNG text chunks, NIfTI description / sidecar, or a radsynth JSON card).
2. ``watermark`` (proof): the pixel watermark is present and its payload decodes (the
   Reed-Solomon code confirms it); the payload names the output and, through the audit
   log, the model, prompt and time.
3. ``suspect`` (not proof): no mark, but the detector gives P(synthetic) at or above its
   threshold, or a watermark pilot is present whose payload cannot be read. The detector
   learnt a few sources (its card), so its probability is a statistical judgement about
   images like those, never proof; it is never consulted on an image outside what it was
   trained on (``SyntheticDetector.outside_domain``: modality, size, colour).

Otherwise ``no-evidence`` (which is not proof of being real; when the detector did not
apply, its ``reason`` says why), or ``unreadable`` with the reason (not an image, no
pixel data, too large, corrupt). A folder is walked; every file gets exactly one verdict
and nothing stops the walk.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from radsynth.errors import RadsynthError
from radsynth.io import read_image
from radsynth.provenance.audit import check_log, default_log, sha256_file
from radsynth.provenance.marking import read_marking
from radsynth.provenance.watermark import detect, model_tag

VERDICTS = ("synthetic-marked", "watermark", "suspect", "no-evidence", "unreadable")
PROOF = ("synthetic-marked", "watermark")
MAX_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Verdict:
    """One file's verdict and the evidence behind it (``evidence``: plain JSON values)."""

    file: str
    verdict: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Proven synthetic (marking or a confirmed watermark); ``suspect`` is not."""
        return self.verdict in PROOF

    @property
    def suspect(self) -> bool:
        return self.verdict == "suspect"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AuditIndex:
    """The audit log's entries by output id prefix, with the log's own integrity check.

    Read again when the log file changes (its size or modification time), so one index can
    serve a long-running process (the service, the PACS gate) without re-reading and
    re-checking the whole log for every file it verifies."""

    def __init__(self, log: str | Path | None = None) -> None:
        self.path = Path(log) if log is not None else default_log()
        self.entries: dict[str, dict[str, Any]] = {}
        self.problem = ""
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._refresh()

    def lookup(self, prefix: str) -> dict[str, Any] | None:
        self._refresh()
        return self.entries.get(prefix)

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp == self._stamp:
                return
            report = check_log(self.path)
            problem = ""
            if not report.ok:
                where = f" at line {report.line}" if report.line else ""
                problem = f"audit log {self.path} failed its check{where}: {report.problem}"
            entries = {}
            for text in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(text)
                except json.JSONDecodeError:
                    continue
                prefix = str(entry.get("output_id", ""))[:8]
                if entry.get("abandoned"):  # deleted unpublished: confirms no file
                    entries.pop(prefix, None)
                else:
                    entries[prefix] = entry
            self.entries, self.problem, self._stamp = entries, problem, stamp


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every file named, and every file under every folder named (sorted, hidden skipped)."""
    for path in map(Path, paths):
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            yield from sorted(p for p in found if not _hidden(p.relative_to(path)))
        else:
            yield path


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def verify_paths(
    paths: Iterable[str | Path],
    *,
    detector: Any | None = None,
    audit: AuditIndex | None = None,
    max_bytes: int = MAX_BYTES,
    on_file: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """A verdict for every file under ``paths``; ``detector`` is a ``SyntheticDetector``
    (None: no detector evidence), ``audit`` the log to consult."""
    audit = audit if audit is not None else AuditIndex()
    verdicts = []
    for path in iter_files(paths):
        verdict = verify_file(path, detector=detector, audit=audit, max_bytes=max_bytes)
        verdicts.append(verdict)
        if on_file is not None:
            on_file(verdict)
    return verdicts


def verify_file(
    path: str | Path,
    *,
    detector: Any | None = None,
    audit: AuditIndex | None = None,
    max_bytes: int = MAX_BYTES,
) -> Verdict:
    """One file's verdict; never raises for a bad file (its problem becomes the verdict)."""
    path = Path(path)
    name = str(path)
    if not path.is_file():
        return Verdict(name, "unreadable", {"problem": "no such file"})
    size = path.stat().st_size
    if size > max_bytes:
        return Verdict(name, "unreadable", {"problem": f"too large to check ({size / 1e6:.0f} MB > limit)"})
    if path.name.lower().endswith(".json"):
        return _verify_json(path)
    evidence: dict[str, Any] = {}
    try:
        marking = read_marking(path)
    except Exception:  # any reader's failure means "no readable marking"; pixels decide below
        marking = None
    try:
        image = read_image(path)
    except RadsynthError as err:
        if marking:
            return Verdict(name, "synthetic-marked", {"marking": _plain(marking), "pixels": str(err)})
        return Verdict(name, "unreadable", {"problem": err.problem})
    except Exception as err:  # a reader library's own failure on a corrupt file
        return Verdict(name, "unreadable", {"problem": f"cannot read ({type(err).__name__}: {err})"[:300]})
    mark = detect(image.array.mean(-1) if image.rgb else image.array)
    evidence["watermark"] = _watermark_evidence(mark, audit, path)
    if detector is not None:
        evidence["detector"] = _detector_evidence(detector, image)
    if audit is not None and audit.problem:
        evidence["audit_log_problem"] = audit.problem
    if marking:
        entry = audit.lookup(str(marking.get("output_id", ""))[:8]) if audit is not None else None
        if entry is not None:
            evidence["audit"] = _audit_evidence(entry, path)
        return Verdict(name, "synthetic-marked", {"marking": _plain(marking), **evidence})
    if mark.found and mark.payload is not None:
        return Verdict(name, "watermark", evidence)
    if mark.found:
        return Verdict(name, "suspect", {**evidence, "reason": "watermark pilot without a readable payload"})
    score = evidence.get("detector", {})
    if score.get("applies") and score["flagged"]:
        reason = f"detector alone: P(synthetic)={score['p_synthetic']} >= {score['threshold']:.6f}, not proof"
        return Verdict(name, "suspect", {**evidence, "reason": reason})
    if score and not score.get("applies"):
        evidence["reason"] = f"detector not applicable: {score['reason']}"
    return Verdict(name, "no-evidence", evidence)


def _detector_evidence(detector: Any, image: Any) -> dict[str, Any]:
    """The detector's probability, or why it does not apply to this image (it is not asked
    about images unlike anything it learnt, whose probability would be a guess)."""
    outside = detector.outside_domain(image)
    if outside:
        return {"applies": False, "reason": outside, "model": detector.model_id}
    p = detector.score_image(image)
    return {
        "applies": True,
        "p_synthetic": round(p, 6),
        "threshold": detector.threshold,
        "flagged": bool(p >= detector.threshold),  # compared unrounded: the threshold lives near 1
        "model": detector.model_id,
    }


def _watermark_evidence(mark: Any, audit: AuditIndex | None, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"found": mark.found, "score": round(mark.score, 2)}
    if not mark.found:
        return out
    if mark.payload is None:
        out["payload"] = "unreadable (too damaged for the error-correcting code)"
        return out
    out["output_id_prefix"] = mark.payload.output_prefix
    out["model_tag"] = f"{mark.payload.model_tag:04x}"
    entry = audit.lookup(mark.payload.output_prefix) if audit is not None else None
    # an id is confirmed only by a logged output: a badly damaged mark can, rarely, decode
    # to another id (benchmarks/provenance.py), which no log line will match
    out["id_confirmed_by_audit_log"] = entry is not None
    if entry is not None:
        out["audit"] = {
            **_audit_evidence(entry, path),
            "model_tag_matches": model_tag(str(entry.get("model_id", ""))) == mark.payload.model_tag,
        }
    return out


def _audit_evidence(entry: dict[str, Any], path: Path) -> dict[str, Any]:
    """What the audit log says of an output, and whether this file is byte for byte the
    one it logged (re-saved or edited copies are not)."""
    return {
        "output_id": entry.get("output_id"),
        "model_id": entry.get("model_id"),
        "time": entry.get("time"),
        "file_unchanged": sha256_file(path) in set((entry.get("files") or {}).values()),
    }


def _verify_json(path: Path) -> Verdict:
    """A radsynth card or NIfTI sidecar says ``"synthetic": true``; other JSON is no image."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return Verdict(str(path), "unreadable", {"problem": f"not valid JSON ({err})"[:200]})
    if isinstance(data, dict) and data.get("synthetic") is True:
        keys = ("model_id", "output_id", "prompt", "radsynth_version")
        return Verdict(str(path), "synthetic-marked", {"marking": {k: data[k] for k in keys if k in data}})
    return Verdict(str(path), "unreadable", {"problem": "JSON without image data"})


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def summarise(evidence: dict[str, Any]) -> str:
    """The evidence in one line a person reads at a glance."""
    parts = []
    if "problem" in evidence:
        parts.append(str(evidence["problem"]))
    marking = evidence.get("marking")
    if marking:
        model = marking.get("model_id") or marking.get("manufacturer") or "?"
        parts.append(f"metadata: synthetic, model {model}")
    mark = evidence.get("watermark")
    if mark:
        text = f"watermark z={mark['score']}" + (" found" if mark["found"] else " absent")
        if mark.get("output_id_prefix"):
            text += f", output {mark['output_id_prefix']}"
        parts.append(text)
    audit = evidence.get("audit") or (mark or {}).get("audit")
    if audit:
        same = "file unchanged" if audit["file_unchanged"] else "file changed since written"
        parts.append(f"audit log: {audit['model_id']} at {audit['time']}, {same}")
    score = evidence.get("detector")
    if score and score.get("applies", True) and "p_synthetic" in score:
        parts.append(f"detector P(synthetic)={score['p_synthetic']:.2f} (suspicion, not proof)")
    elif score:
        parts.append(f"detector not applicable: {score['reason']}")
    return "; ".join(parts)
