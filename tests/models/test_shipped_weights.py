"""The shipped weights' budget (issue 25 follow-up): every file under the package's weights
folder under 30 MB and all of them under 150 MB, as the repository and a wheel hold them.
Inference traces are built into the user's cache, never shipped: a stray ``export/`` folder
left by an older checkout is not counted (git ignores it)."""

from __future__ import annotations

from radsynth.models.registry import SHIPPED_WEIGHTS

FILE_LIMIT, TOTAL_LIMIT = 30e6, 150e6


def test_every_shipped_file_and_their_total_fit_the_budget():
    files = [
        p
        for p in SHIPPED_WEIGHTS.rglob("*")
        if p.is_file() and "export" not in p.relative_to(SHIPPED_WEIGHTS).parts
    ]
    assert any(p.suffix == ".safetensors" for p in files)
    sizes = {str(p.relative_to(SHIPPED_WEIGHTS)): p.stat().st_size for p in files}
    assert all(size < FILE_LIMIT for size in sizes.values()), sizes
    total = sum(sizes.values())
    assert total < TOTAL_LIMIT, f"{total / 1e6:.1f} MB"
