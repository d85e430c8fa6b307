"""The pipeline's Python has no unused imports or undefined names (pyflakes, from Debian)."""
import subprocess
import sys

from .conftest import ROOT


def test_pyflakes_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "pyflakes", "scripts/tinylm"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_import_cycles_between_the_pipelines_modules():
    """Not even through an import inside a function (the way a cycle is usually hidden)."""
    import ast

    package = ROOT / "scripts" / "tinylm"
    imports = {}
    for path in package.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import y / from . import x
                names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        imports[path.stem] = names

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in imports.get(start, ()))

    cycles = sorted(m for m in imports if reaches(m, m))
    assert not cycles, cycles
