"""`python -m audio_engine.app`: the library window (what the app-menu entry runs)."""

from audio_engine.app import run

if __name__ == "__main__":
    run()
