"""Training metrics: running means, a JSONL log (rank 0) and a rich progress bar."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from radsynth.io.atomic import write_text_atomic


class Meter:
    """Means of scalar logs since the last :meth:`reset`."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0

    def add(self, logs: Mapping[str, torch.Tensor | float]) -> None:
        for key, value in logs.items():
            self.sums[key] += float(value)
        self.count += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in sorted(self.sums.items())}

    def reset(self) -> None:
        self.sums.clear()
        self.count = 0


class MetricLog:
    """``log.jsonl``: one line per logged step. Rewritten atomically at each write (it is
    small), so a crash never leaves half a line; on resume, lines past the resumed step
    are dropped."""

    def __init__(self, path: Path, resume_step: int | None, enabled: bool) -> None:
        self.path, self.enabled = path, enabled
        self.lines: list[str] = []
        if enabled and resume_step is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resume_step:
                        self.lines.append(line)
                except json.JSONDecodeError:
                    continue

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.lines.append(json.dumps(record, separators=(",", ":")))
        write_text_atomic(self.path, "\n".join(self.lines) + "\n")


class Progress:
    """A rich progress bar with the loss and images/s; a no-op when disabled."""

    def __init__(self, total: int, start: int, enabled: bool, description: str) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} img/s"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task(description, total=total, completed=start, loss="-", speed="-")
        self.bar.start()

    def update(self, step: int, loss: float | None, images_per_s: float) -> None:
        if self.enabled:
            shown = "-" if loss is None else f"{loss:.4f}"
            self.bar.update(self.task, completed=step, loss=shown, speed=f"{images_per_s:.1f}")

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
