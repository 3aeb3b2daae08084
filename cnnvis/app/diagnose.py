"""`cnnvis diagnose FILE [--json]`: the findings of an analysis file, one line each, most severe first.

The application wires `run` in as the `diagnose` command; bad input raises CnnvisError (the command layer
prints it as one line and exits 2). Notes (checks skipped for lack of snapshots or ReLUs) go to stdout after
the findings in text mode and to stderr with --json, so that stdout stays one JSON list.
"""
from __future__ import annotations

import argparse
import json
import sys

from cnnvis.diagnose._diagnose import diagnose
from cnnvis.diagnose._findings import KINDS, Diagnosis

__all__ = ["run", "execute", "format_text", "to_json", "parser"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnvis diagnose",
                                description="Findings in an analysis file: one line each, most severe first.")
    p.add_argument("file", metavar="FILE", help="a .cnnvis analysis file (from `cnnvis analyze`)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of objects (kind, severity, layer, neurons, evidence, message, ...)")
    p.add_argument("--kind", action="append", choices=KINDS, metavar="KIND",
                   help=f"only these kinds (repeatable): {', '.join(KINDS)}")
    return p


def run(argv: list[str]) -> int:
    return execute(parser().parse_args(argv))


def execute(args: argparse.Namespace) -> int:
    """The command on parsed arguments (`file`, `json`, `kind`), for a parent parser built on `parser()`."""
    from cnnvis.analysis import Analysis

    result = diagnose(Analysis.load(args.file), kinds=args.kind)
    if args.json:
        print(to_json(result))
        for n in result.notes:
            print(f"note: {n}", file=sys.stderr)
    else:
        print(format_text(result))
    return 0


def _findings_and_notes(findings):
    if isinstance(findings, Diagnosis):
        return findings.findings, findings.notes
    return tuple(findings), ()


def format_text(findings) -> str:
    """Numbered lines (1 = most severe; the number the viewer's --finding takes), then the notes."""
    fs, notes = _findings_and_notes(findings)
    lines = [f"{i}. [{f.severity}] {f.kind}: {f.message}" for i, f in enumerate(fs, start=1)]
    if not fs:
        lines.append("no findings")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def to_json(findings) -> str:
    """A JSON list with one object per finding (Finding.to_dict), most severe first, one object a line."""
    fs, _ = _findings_and_notes(findings)
    if not fs:
        return "[]"
    return "[\n" + ",\n".join(json.dumps(f.to_dict(), allow_nan=False) for f in fs) + "\n]"
