"""The reminder's settings file: values, every bad one at FILE:LINE:COL, flags on top."""

from __future__ import annotations

import pytest

from audio_engine.remind import settings as st
from audio_engine.remind.settings import Settings, SettingsError


def test_missing_file_gives_the_defaults(tmp_path):
    s, warnings = st.load(tmp_path / "remind.yaml")
    assert s == Settings() and warnings == []
    assert s.every_s == 45 * 60 and s.snooze_s == 600 and s.snoozes == 2
    assert s.session == "desk-stretches"


def test_settings_path_follows_the_settings_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("RELAX_SETTINGS_DIR", str(tmp_path))
    assert st.settings_path() == tmp_path / "remind.yaml"


def test_a_full_file_is_read(tmp_path):
    path = tmp_path / "remind.yaml"
    path.write_text(
        "# mine\n"
        "every: 30m\n"
        "snooze: 5m\n"
        "snoozes: 1\n"
        "idle: 3m\n"
        "hours: 8:30-17:30\n"
        "days: mon-fri\n"
        "breathe: 11:00, 15:00\n"  # YAML 1.1 would read 11:00 as the number 660
        "session: quick-reset\n"
        "notify: window\n"
        "respect_dnd: no\n"
    )
    s, warnings = st.load(path)
    assert warnings == []
    assert s.every_s == 1800 and s.snooze_s == 300 and s.snoozes == 1 and s.idle_s == 180
    assert s.hours == (8 * 60 + 30, 17 * 60 + 30)
    assert s.days == frozenset(range(5))
    assert s.breathe == (660, 900)
    assert s.session == "quick-reset" and s.notify == "window" and s.respect_dnd is False
    c = s.config()
    assert c.every_s == 1800 and c.idle_break_s == 180 and c.breathe_at == (660, 900)


def test_lists_are_accepted_for_days_and_times(tmp_path):
    s, _ = st.parse("days: [mon, wed, fri]\nbreathe:\n  - '11:00'\n  - 15:30\n", "f.yaml")
    assert s.days == frozenset({0, 2, 4}) and s.breathe == (660, 930)


def test_days_wrap_around_the_week():
    s, _ = st.parse("days: fri-mon\n", "f.yaml")
    assert s.days == frozenset({4, 5, 6, 0})


def test_every_bad_value_is_reported_at_its_line_and_column():
    text = (
        "every: 45\n"  # 1: no unit
        "snooze: 2h\n"  # 2: too long
        "hours: 9to17\n"  # 3
        "days: mon-fry\n"  # 4
        "breathe: 25:00\n"  # 5
        "evry: 30m\n"  # 6: unknown, with a hint
        "notify: loud\n"  # 7
        "snoozes: -1\n"  # 8
    )
    with pytest.raises(SettingsError) as info:
        st.parse(text, "remind.yaml")
    lines = str(info.value).splitlines()
    assert lines == [
        "remind.yaml:1:8: error: every: '45' needs a unit: h, m or s (e.g. 45m)",
        "remind.yaml:2:9: error: snooze: must be between 1m and 60m",
        "remind.yaml:3:8: error: hours: '9to17' is not a range of hours (e.g. 9-17, 8:30-17:30, all)",
        "remind.yaml:4:7: error: days: 'fry' is not a day (mon, tue, wed, thu, fri, sat, sun)",
        "remind.yaml:5:10: error: breathe: '25:00' is not a time of day (00:00 to 24:00)",
        "remind.yaml:6:1: error: evry: unknown setting; did you mean 'every'?",
        "remind.yaml:7:9: error: notify: must be one of auto, dbus, window",
        "remind.yaml:8:10: error: snoozes: must be a whole number from 0 to 5",
    ]


def test_a_bad_item_in_a_list_is_reported_where_it_is():
    with pytest.raises(SettingsError) as info:
        st.parse("breathe:\n  - 11:00\n  - noon\n", "r.yaml")
    assert (
        str(info.value)
        == "r.yaml:3:5: error: breathe: 'noon' is not a time of day (e.g. 9, 9:30, 17:00)"
    )


def test_every_outside_the_guide_is_a_warning_not_an_error():
    s, warnings = st.parse("every: 90m\n", "r.yaml")
    assert s.every_s == 5400
    assert [str(w) for w in warnings] == [
        "r.yaml:1:8: warning: every: the guide advises a break every 30m to 60m of sitting; "
        "using it anyway"
    ]


def test_yaml_errors_and_odd_shapes_are_reported(tmp_path):
    with pytest.raises(SettingsError) as info:
        st.parse("every: [45m\n", "r.yaml")
    assert str(info.value).startswith("r.yaml:2:1: error: YAML syntax error")
    with pytest.raises(SettingsError) as info:
        st.parse("- every\n", "r.yaml")
    assert "r.yaml:1:1: error: expected a mapping" in str(info.value)
    with pytest.raises(SettingsError) as info:
        st.parse("every: 45m\nevery: 30m\n", "r.yaml")
    assert str(info.value) == "r.yaml:2:1: error: every: this setting is given twice"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"every: \xff\n")
    with pytest.raises(SettingsError, match="not UTF-8"):
        st.load(bad)


def test_an_empty_file_gives_the_defaults():
    assert st.parse("# nothing yet\n", "r.yaml") == (Settings(), [])


def test_flags_override_the_file():
    s, _ = st.parse("every: 30m\nsession: quick-reset\n", "r.yaml")
    s2, warnings = s.override(every="50m", session=None, hours="9-17", days="mon-fri")
    assert s2.every_s == 3000 and s2.session == "quick-reset"
    assert s2.hours == (540, 1020) and s2.days == frozenset(range(5))
    assert warnings == []
    _, warnings = s.override(every="20m")
    assert warnings == [
        "--every 20m: the guide advises a break every 30m to 60m of sitting; using it anyway"
    ]
    with pytest.raises(ValueError, match=r"^--breathe 11h: '11h' is not a time of day"):
        s.override(breathe="11h")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45m", 2700), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("2.5m", 150), (" 30 m", 1800)],
)
def test_durations(text, seconds):
    assert st.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "45", "4x", "1..5m", "-5m"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        st.parse_duration(text)


def test_the_template_reads_back_as_the_same_settings():
    s = Settings(every_s=1800, hours=(540, 1020), days=frozenset({0, 1}), breathe=(660,))
    text = st.template(s)
    assert "# a break after this much active time" in text
    assert st.parse(text, "t.yaml") == (s, [])
    assert st.parse(st.template(Settings()), "t.yaml") == (Settings(), [])


def test_days_are_written_back_as_ranges():
    assert st.describe(Settings(days=frozenset(range(5))))["days"] == "mon-fri"
    assert st.describe(Settings(days=frozenset({0, 2, 3, 4, 6})))["days"] == "mon,wed-fri,sun"
    assert st.describe(Settings(days=frozenset({0, 1})))["days"] == "mon,tue"


def test_the_template_quotes_what_yaml_would_misread():
    s = Settings(session='/my sessions/a "calm" one: #1.yaml', breathe_session="-x")
    assert st.parse(st.template(s), "t.yaml") == (s, [])
