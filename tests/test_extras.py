"""radsynth installed without its extras (pyproject.toml): ``--help`` and the generation,
translation and verification modules import, ``radsynth generate`` writes images, and a
command that needs an extra says which one to install in one line. Run in a subprocess
whose site-packages lack the extras' distributions (links to everything else)."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import radsynth
from radsynth.errors import MissingExtra
from radsynth.extras import EXTRAS, optional_import, require_extra

# The distributions the extras add (pyproject.toml), and starlette, which comes with fastapi.
EXTRA_DISTRIBUTIONS = (
    "scikit-learn",
    "prdc",
    "pytorch-msssim",
    "matplotlib",
    "pyradiomics",
    "nilearn",
    "fastapi",
    "starlette",
    "uvicorn",
    "python-multipart",
    "dicomweb-client",
)


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """``bare(code, cwd)``: run ``code`` in a Python that sees site-packages minus the extras."""
    site = Path(sysconfig.get_paths()["purelib"])
    hidden: set[str] = set()
    for name in EXTRA_DISTRIBUTIONS:
        try:
            files = importlib.metadata.distribution(name).files or ()
        except importlib.metadata.PackageNotFoundError:
            continue
        hidden |= {Path(str(f)).parts[0] for f in files}
    farm = tmp_path_factory.mktemp("site-without-extras")
    for entry in site.iterdir():
        if entry.name not in hidden and entry.suffix != ".pth":
            (farm / entry.name).symlink_to(entry)
    source = Path(radsynth.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(farm)])}

    def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-S", "-c", code]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)

    return run


@pytest.mark.slow  # imports torch, MONAI and diffusers in a fresh process
def test_the_extras_are_hidden_and_help_and_the_core_workflows_import(bare, tmp_path):
    modules = sorted(set().union(*EXTRAS.values()))
    code = (
        "import importlib.util, sys\n"
        f"assert all(importlib.util.find_spec(m) is None for m in {modules!r})\n"
        "import radsynth.generate, radsynth.sampling.pipeline, radsynth.translate.volume\n"
        "import radsynth.provenance.verify, radsynth.train.loop, radsynth.education.handout\n"
        "from radsynth.cli import main\n"
        "sys.exit(main(['--help']))\n"
    )
    done = bare(code, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "generate" in done.stdout


# The handout's case imports the generation stack before its check: slow like the import test.
@pytest.mark.parametrize(
    "args, extra",
    [
        pytest.param(["evaluate", "--real", "a", "--synthetic", "b", "--train", "c", "-o", "o"], "eval"),
        pytest.param(["handout", "report.txt", "-o", "h"], "education", marks=pytest.mark.slow),
        pytest.param(["serve"], "serve"),
        pytest.param(["pacs", "search", "http://127.0.0.1:9/dicom-web"], "serve"),
    ],
    ids=["evaluate", "handout", "serve", "pacs"],
)
def test_a_command_that_needs_an_extra_names_it_in_one_line(bare, tmp_path, args, extra):
    (tmp_path / "report.txt").write_text("FINDINGS: A 2 cm mass in the right upper lobe.\n")
    done = bare(f"import sys\nfrom radsynth.cli import main\nsys.exit(main({args!r}))\n", tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: ") and lines[0].endswith(f"pip install 'radsynth[{extra}]'")


@pytest.mark.slow
def test_generate_writes_marked_images_without_any_extra(bare, tmp_path):
    args = ["generate", "axial chest CT, lung window", "-n", "2", "--steps", "4", "-o", "out"]
    done = bare(f"import sys\nfrom radsynth.cli import main\nsys.exit(main({args!r}))\n", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "out").glob("*.png"))) == 3  # two images and the contact sheet


def test_optional_import_names_the_extra_and_keeps_other_failures(tmp_path, monkeypatch):
    assert optional_import("json", "eval").dumps([]) == "[]"
    with pytest.raises(MissingExtra, match=r"pip install 'radsynth\[eval\]'"):
        optional_import("radsynth_no_such_module", "eval")
    # Installed, but something it imports is not: the real error, not a wrong hint.
    (tmp_path / "radsynth_broken_module.py").write_text("import radsynth_no_such_dependency\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(ModuleNotFoundError, match="radsynth_no_such_dependency"):
        optional_import("radsynth_broken_module", "eval")


def test_require_extra_lists_what_is_missing(monkeypatch):
    require_extra("eval", "evaluation")  # the test environment has every extra
    monkeypatch.setitem(EXTRAS, "eval", ("json", "radsynth_no_such_module"))
    with pytest.raises(MissingExtra, match=r"^evaluation needs radsynth_no_such_module \(the 'eval' extra\)"):
        require_extra("eval", "evaluation")
