"""What one service instance is allowed to do, in two small frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from radsynth.sampling.bounds import Bounds

GATE_POLICIES = ("quarantine", "forward-tagged")
SUSPECT_POLICIES = ("forward-noted", "quarantine", "forward")


@dataclass(frozen=True)
class Limits:
    """Per-request and per-token limits; exceeding one is a 413, 422 or 429, never a crash.

    ``jobs_per_token``: queued + running jobs one token may hold (more is 429 with Retry-After,
    so one client cannot starve the others on a shared queue). Zip limits stop zip bombs:
    the uncompressed total is counted as bytes are written, not taken from the archive's
    own (forgeable) header. Prompt, n and steps narrow the library's bounds
    (``radsynth.sampling.bounds``); guidance keeps the library's range.
    """

    max_prompt_chars: int = 500
    max_n: int = 64
    max_steps: int = 200
    max_upload_mb: float = 256.0
    max_files: int = 2000
    max_unzipped_mb: float = 1024.0
    max_zip_ratio: float = 200.0
    max_report_chars: int = 20_000
    jobs_per_token: int = 4
    retry_after_s: int = 5

    def __post_init__(self) -> None:
        Bounds(self.max_prompt_chars, self.max_n, self.max_steps)  # ValueError past the library's

    @property
    def bounds(self) -> Bounds:
        """The generation bounds this service checks requests against."""
        return Bounds(self.max_prompt_chars, self.max_n, self.max_steps)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024**2)

    @property
    def max_unzipped_bytes(self) -> int:
        return int(self.max_unzipped_mb * 1024**2)


@dataclass(frozen=True)
class ServeSettings:
    """``data_dir`` holds everything the service keeps: ``radsynth.db`` (tokens, jobs),
    ``jobs/<id>/`` (inputs and outputs), ``gate/`` (quarantine, pending), ``audit.jsonl``
    (unless ``$RADSYNTH_AUDIT_LOG`` names another).
    ``pacs``: the DICOMweb root generated studies are pushed to and the gate forwards to.
    ``workers``: job threads (1 on a 2-core machine: a second only splits the same cores).
    ``data_roots``: folders besides ``data_dir`` whose manifests evaluation jobs may read."""

    data_dir: Path
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    pacs: str | None = None
    gate_policy: str = "quarantine"
    gate_suspect_policy: str = "forward-noted"
    detector: bool = True
    device: str | None = None
    pacs_retries: int = 3
    pacs_backoff_s: float = 0.5
    data_roots: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.gate_policy not in GATE_POLICIES:
            raise ValueError(
                f"gate policy must be one of {', '.join(GATE_POLICIES)}, got {self.gate_policy!r}"
            )
        if self.gate_suspect_policy not in SUSPECT_POLICIES:
            raise ValueError(
                f"gate suspect policy must be one of {', '.join(SUSPECT_POLICIES)}, "
                f"got {self.gate_suspect_policy!r}"
            )
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @property
    def database(self) -> Path:
        return self.data_dir / "radsynth.db"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def gate_dir(self) -> Path:
        return self.data_dir / "gate"

    @property
    def audit_log(self) -> Path:
        """``$RADSYNTH_AUDIT_LOG`` when set (the CLI's rule), else ``<data_dir>/audit.jsonl``."""
        from radsynth.provenance.audit import default_log

        return default_log(fallback=self.data_dir / "audit.jsonl")
