"""ISO-8601 times as the API, S3 events and users write them, read the same way on Python 3.10
(whose fromisoformat takes no trailing Z)."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_utc(text: str) -> datetime | None:
    """An aware datetime (naive = UTC), or None when `text` is not ISO-8601."""
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
