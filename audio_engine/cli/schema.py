"""`relax schema`: print the JSON Schema of session scripts, for editors and other tools."""

from __future__ import annotations

import argparse
import json

from audio_engine import script


def register(sub) -> None:
    parser = sub.add_parser(
        "schema",
        help="print the JSON Schema of session scripts",
        description="Print the JSON Schema (draft 2020-12) of the session script format, "
        "version 1. Point your editor's YAML support at it for completion and checks while "
        "you type, e.g. with a first line `# yaml-language-server: $schema=relax.schema.json` "
        "after `relax schema > relax.schema.json`. A few rules only `relax validate` checks: "
        "duplicate keys, sound files that must exist, a countdown that must fit its hold, cue "
        "words for languages without built-in ones, and the session's total length.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(script.json_schema(), indent=2, ensure_ascii=False))
    return 0
