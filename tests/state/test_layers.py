"""The arrows between the edge layers (docs/architecture.md, Layers): Durable Objects never
import the Worker, and the Worker imports the Durable Objects only to re-export their classes."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out.add(node.module or "")
            if node.module in ("worker", "durable_objects"):
                out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def importers(folder: str, target: str) -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.py")
                  if any(m == target or m.startswith(target + ".") for m in imports_of(p)))


def test_durable_objects_never_import_the_worker():
    assert importers("durable_objects", "worker") == []


def test_the_worker_imports_durable_objects_only_in_its_entry_module():
    assert importers("worker", "durable_objects") == ["worker/entry.py"]


def test_the_checker_sees_both_import_forms(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from worker import stores\nimport durable_objects.sql\n")
    assert {"worker.stores", "durable_objects.sql"} <= imports_of(sample)
