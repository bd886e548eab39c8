"""Running `scripts/openapi` in-process on the specs in tests/openapi/specs/."""
from __future__ import annotations

from pathlib import Path

from src.tollgate_tools.openapi.__main__ import main

SPECS = Path(__file__).resolve().parent / "specs"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `scripts/openapi ARGV`."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err
