"""Times as people read them: the one formatter for pages, CLI tables and messages.

Every time labelwright stores is seconds since the epoch (UTC), and every time it shows is UTC, said so.
A leaf module: it imports nothing from the package, so any layer may use it.

>>> utc_time(0)
'1970-01-01 00:00 UTC'
>>> utc_time(0, seconds=True)
'1970-01-01 00:00:00 UTC'
>>> utc_time(None), utc_time(None, missing="")
('–', '')
>>> utc_day(86_399.9)
'1970-01-01'
"""

from __future__ import annotations

from datetime import datetime, timezone

MISSING = "–"  # what a page shows for a time that is not there (never happened, no limit)


def utc_time(ts: float | None, *, seconds: bool = False, zone: bool = True, missing: str = MISSING) -> str:
    """``ts`` as ``YYYY-MM-DD HH:MM UTC`` (``:SS`` with ``seconds``; without `` UTC`` when ``zone`` is
    false, as a form field's value that is read back as UTC); ``missing`` for None."""
    if ts is None:
        return missing
    text = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} UTC" if zone else text


DAY = "%Y-%m-%d"  # a UTC day, as people type it and pages show it


def utc_day(ts: float) -> str:
    """The UTC day of ``ts`` as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime(DAY)


def day_start(text: str) -> float:
    """The timestamp of the start (00:00 UTC) of the day ``YYYY-MM-DD``; ValueError for anything else."""
    return datetime.strptime(text, DAY).replace(tzinfo=timezone.utc).timestamp()


def parse_utc_time(text: str) -> float:
    """A time a person typed, read as UTC: ``YYYY-MM-DD HH:MM``, ``YYYY-MM-DDTHH:MM`` (a browser's
    datetime field) or a day (its start); ValueError for anything else."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", DAY):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ValueError(f"not a time as YYYY-MM-DD HH:MM: {text!r}")
