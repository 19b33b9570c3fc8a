"""The interface in the listener's language: the catalogs cover the code, and Dutch frames, lines,
summaries, transcripts and reminders carry no English interface text."""

from __future__ import annotations

import importlib.util
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import polib
import pytest

from audio_engine import history, i18n, pipeline, timeline
from audio_engine.player import pacer


def _extract():
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "update_catalogs.py"
    spec = importlib.util.spec_from_file_location("update_catalogs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.extract()


def _fields(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)[^}]*\}", text))


@pytest.fixture
def dutch():
    with i18n.using("nl"):
        yield


def _english_words() -> list[str]:
    """Every interface message whose Dutch differs, as the English a Dutch frame must not show
    (placeholders cut out: the fixed words around them)."""
    po = polib.pofile(str(i18n.catalog_path("nl")))
    words = []
    for entry in po.translated_entries():
        targets = [entry.msgstr] if not entry.msgid_plural else list(entry.msgstr_plural.values())
        for source in filter(None, [entry.msgid, entry.msgid_plural]):
            if source in targets:
                continue
            for piece in re.split(r"\{\w+\}", source):
                piece = piece.strip(" :·()%.\u2026")
                if len(piece) >= 3 and not any(piece in t for t in targets):
                    words.append(piece)
    return words


def _assert_no_english(texts):
    english = _english_words()
    assert len(english) > 40
    for text in texts:
        for word in english:
            assert not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text), (word, text)


def test_every_message_in_the_code_has_a_dutch_translation():
    messages = _extract()
    assert len(messages) > 60
    assert i18n.available() == ("en", "nl")
    po = polib.pofile(str(i18n.catalog_path("nl")))
    entries = {(e.msgid, e.msgid_plural or None): e for e in po if not e.obsolete}
    missing = [key for key in messages if key not in entries]
    assert not missing, f"run scripts/update_catalogs.py: {missing}"
    for key, entry in entries.items():
        assert key in messages, f"{key} is in the catalog but not in the code"
        assert "fuzzy" not in entry.flags, key
        targets = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        assert targets and all(t.strip() for t in targets), f"no Dutch for {key}"
        for target in targets:
            assert _fields(target) == _fields(key[0]), (key, target)
    assert po.metadata["Plural-Forms"].startswith("nplurals=2")


def test_the_language_follows_the_session_then_the_choice_then_the_locale(monkeypatch):
    monkeypatch.setenv("LANG", "nl_NL.UTF-8")
    assert i18n.set_language(None) == "nl"
    assert i18n._("paused") == "gepauzeerd"
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")  # no catalog: English
    assert i18n.set_language(None) == "en"
    assert i18n.set_language("nl-BE") == "nl"
    with i18n.using("en"):
        assert i18n._("paused") == "paused"
    assert i18n._("paused") == "gepauzeerd"
    assert i18n.ngettext("{n} day", "{n} days", 1) == "{n} dag"
    assert i18n.ngettext("{n} day", "{n} days", 3) == "{n} dagen"
    i18n.set_language(None)


def _state(**extra):
    base = dict(
        title="Korte reset",
        section="Drie langzame ademhalingen",
        phase="hold",
        cue="",
        phase_fraction=0.5,
        phase_left_s=2.0,
        phase_count=3,
        breath=1.0,
        caption="",
        elapsed_s=61.0,
        total_s=122.0,
        paused=True,
        muted=True,
        volume=0.5,
    )
    base.update(extra)
    return pacer.PacerState(**base)


@pytest.mark.parametrize("size", [(720, 720), (800, 600), (1920, 1080)])
def test_a_dutch_pacer_frame_shows_no_english_interface_text(dutch, size):
    pygame = pytest.importorskip("pygame")
    surface = pygame.Surface(size)
    placed = pacer.draw(surface, _state())
    roles = {p.role for p in placed}
    assert {"flags", "cue", "keys"} <= roles
    texts = [p.text for p in placed]
    assert any("gepauzeerd" in t and "achtergrond uit" in t for t in texts), texts
    assert "vast" in texts  # the phase word the pacer adds for a hold without a cue
    assert any("spatie pauze" in t for t in texts)
    _assert_no_english(texts)
    with i18n.using("en"):
        english = [p.text for p in pacer.draw(surface, _state())]
    assert any("background off" in t for t in english) and "hold" in english


@pytest.mark.parametrize("width", [100, 60, 40])
def test_the_dutch_terminal_line_shows_no_english(dutch, width):
    line = pacer.status_line(_state(), width)
    assert "gepauzeerd" in line
    _assert_no_english([line])


def test_the_dutch_end_summary(dutch):
    ams = ZoneInfo("Europe/Amsterdam")
    day = datetime(2026, 12, 1, 20, 0, tzinfo=ams)
    plays = [
        history.Play(day - timedelta(days=k), day, "quick-reset", "nl", 60.0 * (k + 1), True, 3)
        for k in (1, 0)
    ]
    text = history.end_text(plays[-1], plays, day.date())
    assert text == "Vandaag: 1 min geoefend · 2 dagen op rij"
    assert history.end_text(plays[0], plays[:1], day.date()) == "Op maandag: 2 min geoefend"
    _assert_no_english([text, history.minutes_text(10)])


def test_a_dutch_transcript_labels_its_sections_in_dutch_and_an_english_one_in_english():
    from audio_engine import export

    for language, label in (("nl", "Deel: "), ("en", "Section: ")):
        session = pipeline.load("quick-reset", language)
        lengths = {u: len(u.text) * 3000 for u in timeline.speech_requests(session)}
        tl = timeline.compile(session, lengths, strict=False)
        with i18n.using("en" if language == "nl" else "nl"):  # the interface's is not the one
            vtt = export.transcript_vtt(tl)
        notes = [line for line in vtt.splitlines() if line.startswith(("Deel", "Section"))]
        assert len(notes) == len(tl.chapters) >= 2
        assert all(n.startswith(label) for n in notes), notes


def test_reminders_speak_dutch(dutch):
    from audio_engine.remind.notify import actions_for
    from audio_engine.remind.schedule import BREAK, BREATHE, Config, Reminder

    r = Reminder(BREAK, can_snooze=True, active_s=50 * 60)
    texts = [r.title, r.body(Config()), Reminder(BREATHE, False).title]
    texts += [label for _key, label in actions_for(r)]
    assert texts[0] == "Tijd voor een pauze" and "50 minuten" in texts[1]
    assert [label for _key, label in actions_for(r)] == ["Start", "Later", "Overslaan"]
    _assert_no_english(texts)


def test_a_sessions_language_holds_in_its_own_thread_only():
    import threading

    seen = []
    with i18n.using("nl"):
        worker = threading.Thread(target=lambda: seen.append(i18n._("paused")))
        worker.start()
        worker.join()
        assert i18n._("paused") == "gepauzeerd"
    assert seen == ["paused"] and i18n._("paused") == "paused"


def test_the_reminders_log_speaks_dutch(dutch):
    # What `relax remind` logs as the day goes: hours starting and ending, a reminder held back,
    # Snooze, a natural break, sleep, a missed nudge; and the screen-sharing reasons.
    from audio_engine.remind import sharing
    from audio_engine.remind.schedule import Close, Config, Observation, Say, Scheduler

    sched = Scheduler(Config(hours=(9 * 60, 17 * 60), breathe_at=(10 * 60 + 30,)))
    said: list[str] = []
    clock = {"mono": 0.0, "wall": datetime(2026, 11, 30, 8, 55)}  # a Monday

    def run(seconds, idle=False, busy=None, step=5.0):
        for _ in range(int(seconds / step)):
            clock["mono"] += step
            clock["wall"] += timedelta(seconds=step)
            obs = Observation(clock["mono"], clock["wall"], seconds if idle else 0.0, False, busy)
            for action in sched.tick(obs):
                said.append(action.text if isinstance(action, Say) else "")
                said.append(action.reason if isinstance(action, Close) else "")

    run(5 * 60 + 45 * 60, busy=i18n._("do not disturb was on"))
    run(5)
    assert sched.showing is not None and "niet storen" in sched.showing.body(sched.config)
    said += [a.text for a in sched.answer("snooze") if isinstance(a, Say)]
    run(20 * 60)
    run(6 * 60, idle=True, step=30.0)
    clock["wall"] += timedelta(hours=2)  # asleep
    run(5)
    run(8 * 3600)
    said = [text for text in said if text]
    assert said == [
        "werktijd begonnen: actieve tijd telt",
        "pauzeherinnering uitgesteld omdat niet storen aan stond",
        "Later: opnieuw na 10 min activiteit",
        "natuurlijke pauze (inactief)",  # the reminder on screen closed
        "natuurlijke pauze (inactief) na 65 min actief",
        "de computer heeft 2,0 uur geslapen",
        "ademhalingsmoment van 10:30 gemist",
        "werktijd voorbij: geen herinneringen tot de werktijd weer begint",
        "werktijd voorbij",
    ], said
    reasons = [sharing._who({}), sharing.Sharing([]).names]
    assert reasons == ["een programma", "geen"]
    _assert_no_english(said + reasons)


def test_the_window_refuses_an_interface_language_it_does_not_have(capsys):
    from audio_engine.app import window

    try:
        assert window.main(["--ui-language", "fr"]) == 2
        assert "no interface in 'fr'" in capsys.readouterr().err
    finally:
        i18n.set_language(None)
