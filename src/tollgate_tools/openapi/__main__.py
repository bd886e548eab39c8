"""scripts/openapi import|annotate SPEC: see src/tollgate_tools/openapi/__init__.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.tollgate_tools.openapi.annotate import annotate
from src.tollgate_tools.openapi.importer import import_spec
from src.tollgate_tools.openapi.spec import SpecError, dump, load
from src.tollgate_tools.openapi.validate import check
from src.tollgate_tools.openapi.wrangler import render, write

ROOT = Path(__file__).resolve().parents[3]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/openapi", description="OpenAPI specs to Tollgate rules and back.")
    sub = p.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="x-tollgate / x-kong-plugin-rate-limiting -> [vars.TOLLGATE]")
    imp.add_argument("spec", type=Path)
    imp.add_argument("--write", nargs="?", const=ROOT / "wrangler.toml", type=Path, metavar="WRANGLER_TOML",
                     help="replace [vars.TOLLGATE] in this file (default: the repo's wrangler.toml) instead of printing")
    imp.add_argument("--base-path", help="path prefix of every operation (default: the first server URL's path)")
    imp.add_argument("--identity", action="append", metavar="SOURCE",
                     help='identity source, repeatable (e.g. --identity header:x-api-key --identity ip)')
    imp.add_argument("--strict", action="store_true", help="fail when a rule cannot match exactly its operations")
    ann = sub.add_parser("annotate", help="add Tollgate's 429 response to every limited operation")
    ann.add_argument("spec", type=Path)
    ann.add_argument("--output", "-o", type=Path, help="write here (default: standard output)")
    ann.add_argument("--in-place", action="store_true", help="rewrite SPEC itself")
    ann.add_argument("--base-path", help="path prefix of every operation (default: the first server URL's path)")
    return p


def run_import(args: argparse.Namespace) -> int:
    doc = load(args.spec)
    check(doc.raw, str(args.spec))
    result = import_spec(doc, args.base_path, args.identity)
    for warning in result.warnings:
        print(f"openapi: warning: {warning}", file=sys.stderr)
    if args.strict and result.warnings:
        print(f"openapi: {len(result.warnings)} warning(s) with --strict: nothing written", file=sys.stderr)
        return 1
    summary = (f"{len(result.tollgate['rules'])} rule(s), {len(result.tollgate.get('costs', {}))} route cost(s), "
               f"{result.limited} limited operation(s)")
    if args.write:
        write(args.write, result.tollgate)
        print(f"openapi: wrote [vars.TOLLGATE] to {args.write}: {summary}", file=sys.stderr)
    else:
        sys.stdout.write(render(result.tollgate))
        print(f"openapi: {summary}", file=sys.stderr)
    return 0


def run_annotate(args: argparse.Namespace) -> int:
    doc = load(args.spec)
    check(doc.raw, str(args.spec))
    result = annotate(doc, args.base_path)
    check(result.raw, "the annotated spec")
    for label in result.kept:
        print(f"openapi: {label} already documents a 429: left as it is", file=sys.stderr)
    text = dump(doc, result.raw)
    target = args.spec if args.in_place else args.output
    if target is None:
        sys.stdout.write(text)
    else:
        target.write_text(text)
    print(f"openapi: 429 added to {len(result.limited)} operation(s)" + (f", written to {target}" if target else ""),
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run_import(args) if args.command == "import" else run_annotate(args)
    except SpecError as exc:
        print(f"openapi: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
