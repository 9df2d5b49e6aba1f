"""The README's generated tables equal what ``benchmarks/figures.py`` renders from the
committed JSON: a figure changed in one place and not the other fails here."""

import subprocess
import sys
from pathlib import Path

from .conftest import benchmark_module

ROOT = Path(__file__).resolve().parents[2]


def test_readme_tables_are_rendered_from_the_committed_json():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "figures.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr


def test_a_changed_figure_is_caught(tmp_path, monkeypatch):
    figures = benchmark_module("figures")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert figures.render_readme(readme)[1] == []
    row = figures.service_load().splitlines()[2]  # the first verify row, as the README holds it
    cells = row.split(" | ")
    cells[2] = f"{float(cells[2]) + 1.5:.1f}"  # requests/s, changed in the README only
    edited = readme.replace(row, " | ".join(cells), 1)
    assert edited != readme and figures.render_readme(edited)[1] == ["service-load"]
    assert figures.render_readme(edited)[0] == readme
