"""Break reminders on active time (`relax remind`); see docs/remind.md."""
