import subprocess
import sys

from radsynth import __version__
from radsynth.cli import main


def test_version_and_help_are_instant_and_clean(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __version__
    # --help must not import torch or the imaging stack (kept fast by lazy imports).
    code = "import sys; from radsynth.cli import main; main(['--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")
