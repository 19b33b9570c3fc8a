"""`relax new NAME`: start a session script of your own in your sessions folder.

Writes `NAME.<lang>.yaml` into the user's sessions folder, either from a commented template or
as a copy of an existing session (`--from`) with its `id` set to NAME and its `title` made from
NAME ("my-evening" -> "My evening"). Never overwrites a file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from audio_engine import fsio, library, model, script
from audio_engine.errors import RelaxError, ScriptError, UsageError
from audio_engine.script._check import ID_PATTERN, LANGUAGE_PATTERN

TEMPLATE = """\
# A relax session script: format 1. Every key is described in docs/authoring.md.
# Check it with `relax validate {path}`, then play it with `relax play {id}`.
# Write the spoken texts in the script's language ({language}).
format: 1
id: {id}
title: {title}
language: {language}
description: My own short breathing session. Say in one paragraph what it is for.
tags: [breathing, short]

# The voice for every spoken line: rate in words per minute (80-300), volume 0-1.
voice: {{rate: 140, volume: 1.0}}

# Sound under the whole session. A layer is a drone, binaural, noise or sound (a WAV, FLAC or
# OGG file next to this script). volume (0-1) is required; fade_in 3s, fade_out 5s and duck 0.5
# (how far it is lowered while the voice speaks) are the defaults.
background:
  - drone: {{frequency: 110, volume: 0.05}}
  - noise: {{color: pink, volume: 0.03}}

steps:
  - section: Settle in
  # A plain line of text is spoken; the next step starts when it ends.
  - Sit or lie down comfortably, and let your shoulders drop.
  - pause: 3s
  # With a duration, the step lasts exactly that long from the moment the speech starts.
  - say: Breathe out completely through your mouth.
    duration: 6s
  - section: Breathing
  # Phases are durations (4, "4s", "1m30s"); hold and rest default to 0 and are then skipped.
{breathe}
  - chime: bowl
  - say: Notice how your body feels now.
  - pause: 3s
"""

_BREATHE_DEFAULT_CUES = """\
  # The cue words at each phase come from the language; give your own with
  # cues: {inhale: ..., hold: ..., exhale: ..., rest: ...} ("" keeps a phase silent).
  - breathe: {inhale: 4, hold: 4, exhale: 6, cycles: 4, guide_tone: true}"""

_BREATHE_OWN_CUES = """\
  # This language has no built-in cue words: translate these ("" keeps a phase silent).
  - breathe:
      inhale: 4
      hold: 4
      exhale: 6
      cycles: 4
      guide_tone: true
      cues: {inhale: Breathe in, hold: Hold, exhale: Breathe out}"""


def register(sub) -> None:
    parser = sub.add_parser(
        "new",
        help="start a session script of your own",
        description="Write a new session script NAME.<lang>.yaml into your sessions folder "
        f"({library.user_dir()}, or $RELAX_SESSIONS_DIR): a commented template, or a copy "
        "of an existing session with --from (its id set to NAME and its title made from NAME, "
        "e.g. my-evening gets 'My evening'). An existing file is never overwritten. The "
        "path of the new file is printed.",
        epilog="Examples: `relax new my-evening`, `relax new calm --from breathing-478 -l nl`.",
    )
    parser.add_argument(
        "name",
        metavar="NAME",
        help="the new session's id: lower-case letters, digits and '-' (e.g. my-evening)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SESSION",
        help="copy this session (a built-in id, one of your ids, or a file) instead of the "
        "template",
    )
    parser.add_argument(
        "--language",
        "-l",
        metavar="LANG",
        help="the language (BCP 47 tag such as en, nl, en-GB); with --from, which language "
        "version to copy (default: en for the template)",
    )
    parser.set_defaults(run=run)


def _title(name: str) -> str:
    return name.replace("-", " ").strip().capitalize() or name


def from_template(name: str, language: str, path: Path) -> str:
    """The template script for a new session `name` in `language`."""
    has_cues = model.primary_language(language) in model.DEFAULT_CUES
    return TEMPLATE.format(
        id=name,
        title=_title(name),
        language=language,
        path=path,
        breathe=_BREATHE_DEFAULT_CUES if has_cues else _BREATHE_OWN_CUES,
    )


def _scalar(value: str) -> str:
    """`value` as a YAML scalar that reads back as that string."""
    plain = yaml.safe_load(value) if value.strip() else None
    if plain == value and ":" not in value and "#" not in value:
        return value
    return yaml.safe_dump(value, default_style='"', width=1000).strip()


def with_fields(text: str, fields: dict[str, str]) -> str:
    """`text` (a script) with its top-level keys in `fields` set (strings), keeping comments and
    layout; a key it does not have is added after the first line of settings."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    if isinstance(root, yaml.MappingNode) and root.flow_style is False and root.value:
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        top_level = all(k.start_mark.column == 0 for k, _ in root.value)
        missing = dict(fields)
        # From the bottom up, so that earlier positions stay valid.
        for key, value in sorted(root.value, key=lambda kv: -kv[1].start_mark.line):
            if key.value in missing and isinstance(value, yaml.ScalarNode):
                start, end = value.start_mark, value.end_mark
                if start.line == end.line:
                    line = lines[start.line]
                    lines[start.line] = (
                        line[: start.column] + _scalar(missing.pop(key.value)) + line[end.column :]
                    )
        present = {key.value for key, _ in root.value}
        if not (missing.keys() & present) and (not missing or top_level):
            first = root.value[0][0].start_mark.line
            for key in reversed(list(missing)):
                lines.insert(first, f"{key}: {_scalar(missing[key])}\n")
            return "".join(lines)
    data = yaml.safe_load(text)  # unusual layout: rewrite it plainly (comments are lost)
    if not isinstance(data, dict):
        raise RelaxError("the session to copy is not a mapping of session settings")
    data = {**fields, **{k: v for k, v in data.items() if k not in fields}}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def with_id(text: str, name: str) -> str:
    """`text` (a script) with its top-level `id` set to `name`, keeping comments and layout."""
    return with_fields(text, {"id": name})


def run(args: argparse.Namespace) -> int:
    name = args.name
    if not re.match(ID_PATTERN, name):
        raise UsageError(
            f"NAME must be lower-case letters, digits and '-', starting with a letter or "
            f"digit (e.g. my-evening), not {name!r}"
        )
    if args.language and not re.match(LANGUAGE_PATTERN, args.language):
        raise UsageError(f"--language must be a tag such as en, nl or en-GB, not {args.language!r}")
    folder = library.user_dir()
    if args.source:
        source = library.resolve(args.source, args.language)
        # The copy is a session of its own: its own id and title (the title from NAME, as
        # for the template), so that lists and players can tell the two apart.
        try:  # a regular file of at most 1 MiB, like any script
            original = fsio.read_checked(source, script.MAX_BYTES).decode("utf-8")
        except UnicodeDecodeError:
            raise RelaxError(f"cannot copy {source}: it is not UTF-8 text") from None
        from audio_engine.script import _yaml

        # Its YAML is read as any script's is (limits included): a copy needs its settings.
        root, problems = _yaml.compose(original, str(source))
        if root is None:
            raise ScriptError(problems)
        text = with_fields(original, {"id": name, "title": _title(name)})
        try:
            language = str(yaml.safe_load(text).get("language") or "")
        except (yaml.YAMLError, AttributeError):
            language = ""
        language = language or args.language or "en"
    else:
        language = args.language or "en"
        text = None
    path = folder / f"{name}.{language}.yaml"
    if path.exists():
        print(
            f"relax: error: {path} already exists; choose another NAME or remove that file",
            file=sys.stderr,
        )
        return 1
    if text is None:
        text = from_template(name, language, path)
    fsio.private_dir(folder)  # relax's own: 0700 when it makes it, whatever the umask
    try:
        with open(path, "x", encoding="utf-8") as f:  # "x": never overwrite, even in a race
            f.write(text)
    except FileExistsError:
        print(f"relax: error: {path} already exists", file=sys.stderr)
        return 1
    _, diagnostics = script.check(path, allowed_dirs=(folder,))
    for diagnostic in diagnostics:
        print(diagnostic, file=sys.stderr)
    if any(d.severity == "error" for d in diagnostics):
        print(
            f"{path}: note: the copy has problems to fix (a sound file next to the original "
            "must be copied too)",
            file=sys.stderr,
        )
    print(path)
    return 0
