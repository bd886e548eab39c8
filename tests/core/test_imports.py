"""The core runs unchanged on CPython and Pyodide: it imports only the standard library and itself."""
import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "src" / "tollgate"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno}: relative import (the bundle needs absolute ones)"
            out.append((node.lineno, node.module or ""))
    return out


def test_core_imports_only_stdlib_and_itself():
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 8
    bad = []
    for path in files:
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if module == "src.tollgate" or module.startswith("src.tollgate."):
                continue
            if top in sys.stdlib_module_names:
                continue
            bad.append(f"{path.name}:{line}: {module}")
    assert bad == []


def test_the_checker_would_notice(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import json\nfrom workers import Response\nimport js\nfrom src.tollgate.rates import Rate\n")
    mods = [m for _, m in imported_modules(sample)]
    assert [m for m in mods if m.split(".")[0] not in sys.stdlib_module_names and not m.startswith("src.tollgate")] \
        == ["workers", "js"]
