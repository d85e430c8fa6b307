"""The pipeline's Python has no unused imports or undefined names (pyflakes, from Debian)."""
import subprocess
import sys

from .conftest import ROOT


def test_pyflakes_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "pyflakes", "scripts/tinylm"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
