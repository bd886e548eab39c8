"""Split a SQL script into statements (sqlite3's `execute` takes one at a time)."""
from __future__ import annotations

import sqlite3


def split_statements(script: str) -> list[str]:
    """Statements of `script`, each complete per `sqlite3.complete_statement` (semicolons
    inside strings, comments and trigger bodies stay where they are)."""
    out: list[str] = []
    current = ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                out.append(current.strip())
            current = ""
    rest = current[:-1].strip()  # the final split piece got a ';' that was not in the script
    if rest and not all(line.strip().startswith("--") or not line.strip() for line in rest.splitlines()):
        out.append(rest)
    return out
