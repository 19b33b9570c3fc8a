"""The safety text: what the sessions are and are not, and when to see a doctor.

Entry points:

- `safety_text(language) -> str`: the full text (scope, red flags, gentle stretching, warmth and
  cold), in English or Dutch; any other language gets English.
- `first_run_pointer(language) -> str | None`: a one-line pointer to `relax safety`, returned the
  first time it is asked for on this user account and `None` after that.
- `mark_pointer_shown()`: record that the person has seen the pointer (or the full text).

Where the "already shown" marker lives: the folder in the environment variable RELAX_SETTINGS_DIR,
else the user's configuration folder for relax (platformdirs).
"""

from __future__ import annotations

import os
from pathlib import Path

from audio_engine import fsio
from audio_engine.model import primary_language

LANGUAGES = ("en", "nl")
POINTER_MARKER = "safety-pointer-shown"

_TEXT = {
    "en": """\
About these sessions

The sessions in relax are relaxation practice and general information. They are not medical
advice, and they do not replace a diagnosis or a treatment. If your complaints last or keep coming
back, talk to your doctor or to a qualified therapist, such as a physiotherapist.

See a doctor promptly if you notice any of these warning signs ("red flags"):
  - a sudden loss of strength in an arm or a leg, without a clear cause
  - numbness, or tingling that does not go away
  - pain that gets much worse at night and keeps you awake
  - weight loss you cannot explain, together with the muscle pain
  - fever, or feeling generally ill, along with the pain

Stretches should always feel gentle. Stop a stretch straight away if it causes sharp pain,
numbness or tingling.

Warmth or cold? Warmth (a warm shower, a hot-water bottle, infrared) suits stiff, long-tense
muscles without swelling. Cold (an ice pack wrapped in a cloth) suits a fresh injury or a clear
inflammation, usually in the first 48 hours.
""",
    "nl": """\
Over deze sessies

De sessies in relax zijn ontspanningsoefeningen en algemene informatie. Ze zijn geen medisch
advies, en ze vervangen geen diagnose of behandeling. Houden je klachten aan, of komen ze steeds
terug, ga dan naar je huisarts of naar een erkende therapeut, zoals een fysiotherapeut.

Ga snel naar een arts als je een van deze alarmsignalen merkt:
  - plotseling krachtverlies in een arm of been, zonder duidelijke oorzaak
  - een doof gevoel, of tintelingen die niet overgaan
  - pijn die 's nachts veel erger wordt en je wakker houdt
  - gewichtsverlies dat je niet kunt verklaren, samen met de spierpijn
  - koorts, of je algemeen ziek voelen, naast de pijn

Rekoefeningen horen altijd zacht te voelen. Stop meteen met een oefening als die scherpe pijn,
een doof gevoel of tintelingen geeft.

Warmte of kou? Warmte (een warme douche, een kruik, infrarood) past bij stijve, langdurig
gespannen spieren zonder zwelling. Kou (een koelelement of ijszak, in een doek gewikkeld) past
bij een verse blessure of een duidelijke ontsteking, meestal in de eerste 48 uur.
""",
}

_POINTER = {
    "en": "New here? Read `relax safety` first: these sessions are relaxation practice, "
    "not medical advice.",
    "nl": "Nieuw hier? Lees eerst `relax safety --language nl`: deze sessies zijn "
    "ontspanningsoefeningen, geen medisch advies.",
}


def _language(language: str | None) -> str:
    code = primary_language(language) if language else "en"
    return code if code in LANGUAGES else "en"


def safety_text(language: str | None = "en") -> str:
    """The full safety text.

    Parameters
    ----------
    language : str or None
        A BCP 47 tag (`en`, `nl`, `nl-BE`); a language without a translation, or None, gives
        English.

    Returns
    -------
    str
        Several paragraphs, ending in a newline.

    Examples
    --------
    >>> "koorts" in safety_text("nl-BE")
    True
    """
    return _TEXT[_language(language)]


def settings_dir() -> Path:
    """The folder for small per-user settings: RELAX_SETTINGS_DIR, else the config folder."""
    return fsio.settings_dir()


def mark_pointer_shown() -> bool:
    """Record that the pointer was shown; True if this call recorded it (it was not yet shown)."""
    marker = settings_dir() / POINTER_MARKER
    if os.path.lexists(marker):  # a link counts as shown: nothing is written through it
        return False
    try:
        fsio.atomic_write(marker, b"The first-run pointer to `relax safety` has been shown.\n")
    except fsio.FsError:
        # A read-only or missing home must not stop a session; showing the pointer again is the
        # safe side of that trade.
        return True
    return True


def first_run_pointer(language: str | None = "en") -> str | None:
    """A one-line pointer to `relax safety`, the first time only.

    Parameters
    ----------
    language : str or None
        As for `safety_text`.

    Returns
    -------
    str or None
        The pointer on the first call for this user (a marker file records it), else None.
    """
    if not mark_pointer_shown():
        return None
    return _POINTER[_language(language)]
