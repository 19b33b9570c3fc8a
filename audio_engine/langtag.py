"""Language tags (BCP 47), without the session model: `primary_language(tag)`.

`model` has it under the same name; this module is what a command that only lists sessions (a
listing from the cache) needs of it, without the model's dataclasses.
"""

from __future__ import annotations


def primary_language(tag: str) -> str:
    """The primary subtag of a BCP 47 tag, lower-case: `en-GB` -> `en`."""
    return tag.split("-")[0].split("_")[0].lower()
