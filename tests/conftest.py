"""Shared test setup: headless SDL, a per-run speech cache, and a private user folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before anything imports pygame: no sound card and no screen on CI.
os.environ.setdefault("SDL_AUDIODRIVER", "disk")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# A known locale: which language version of a session plays by default follows it.
for _var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
    os.environ.pop(_var, None)
os.environ["LANG"] = "C.UTF-8"

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _private_dirs(tmp_path_factory):
    """Speech cache and user sessions folder private to this test run (shared by its tests)."""
    base = tmp_path_factory.getbasetemp()
    os.environ["RELAX_CACHE_DIR"] = str(base / "cache")
    os.environ["RELAX_SESSIONS_DIR"] = str(base / "user-sessions")
    os.environ["RELAX_SETTINGS_DIR"] = str(base / "settings")
    os.environ["RELAX_DATA_DIR"] = str(base / "data")  # the practice history
    yield


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def bus():
    """A private D-Bus session bus (dbus-daemon) for the reminder's tests."""
    from tests._remind_bus import SessionBus

    b = SessionBus()
    yield b
    b.stop()


@pytest.fixture
def server(bus):
    """A notification server on that bus that records the calls and presses the buttons."""
    from tests._remind_bus import NotificationServer

    s = NotificationServer(bus.address)
    yield s
    s.stop()


def pytest_collection_modifyitems(config, items):
    """The few long tests (marked `heavy`) first: with the suite spread over the cores, one of
    them starts at once while the rest of the suite runs beside it, instead of running alone at
    the end (the order is the same in every worker, as pytest-xdist requires)."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)
