"""When a periodic task is due: every N seconds, or a calendar rule on the bureau's clock.

A task's setting holds its rule, so an operator changes when it runs without code:

- a number of seconds (`15`, `3600`): every so often, counted from the last run;
- `daily HH:MM`, `weekly DAY HH:MM` (`mon` ... `sun`), `monthly D HH:MM` (D from 1 to 28, a
  day every month has): at that time of the bureau's time zone (`TIMEZONE`);
- `off` (or 0, or empty): never on a schedule (`flask schedule run-now` still runs it).

A calendar task is due once its latest occurrence has passed without a run since: a run missed
while no timer was alive happens once, late, never twice. Pure: no Flask, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The last day of the month every month has: "monthly 31" would skip months.
MONTH_DAY_MAX = 28
OFF = ("", "0", "off")
CALENDAR_PATTERN = re.compile(
    r"^(?P<period>daily|weekly|monthly)(?:\s+(?P<day>[a-z]{3}|\d{1,2}))?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})$"
)


@dataclass(frozen=True)
class Every:
    """Every `seconds`, counted from the last run."""

    seconds: float

    def due_before(self, now: datetime, tz: ZoneInfo) -> datetime:
        """A task last run before this moment is due."""
        return now - timedelta(seconds=self.seconds)

    def next_due(self, last: datetime | None, now: datetime, tz: ZoneInfo) -> datetime:
        """When the task is next due (`now` or earlier: it is due now)."""
        return now if last is None else last + timedelta(seconds=self.seconds)

    def describe(self) -> str:
        seconds = self.seconds
        for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
            if seconds >= size and seconds % size == 0:
                return f"every {seconds // size:g}{unit}"
        return f"every {seconds:g}s"


@dataclass(frozen=True)
class Calendar:
    """At a time of day, every day, on one weekday or on one day of the month (bureau time)."""

    period: str  # daily | weekly | monthly
    day: int | None  # weekday 0-6 (weekly) or day of the month 1-28 (monthly)
    at: time

    def previous(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The latest occurrence at or before `now`, in UTC."""
        local = now.astimezone(tz)
        today = local.date()
        if self.period == "daily":
            candidate = today
        elif self.period == "weekly":
            assert self.day is not None
            candidate = today - timedelta(days=(today.weekday() - self.day) % 7)
        else:
            assert self.day is not None
            candidate = today.replace(day=self.day)
        moment = self._at(candidate, tz)
        if moment > now:
            moment = self._at(self._step(candidate, -1), tz)
        return moment

    def following(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """The first occurrence after `moment`, in UTC."""
        last = self.previous(moment, tz).astimezone(tz).date()
        return self._at(self._step(last, 1), tz)

    def due_before(self, now: datetime, tz: ZoneInfo) -> datetime:
        return self.previous(now, tz)

    def next_due(self, last: datetime | None, now: datetime, tz: ZoneInfo) -> datetime:
        latest = self.previous(now, tz)
        if last is None or last < latest:
            return latest  # missed: due now
        return self.following(now, tz)

    def describe(self) -> str:
        clock = f"{self.at:%H:%M}"
        if self.period == "daily":
            return f"daily at {clock}"
        if self.period == "weekly":
            assert self.day is not None
            return f"weekly on {WEEKDAYS[self.day]} at {clock}"
        return f"monthly on day {self.day} at {clock}"

    def _at(self, day: date, tz: ZoneInfo) -> datetime:
        return datetime.combine(day, self.at, tzinfo=tz).astimezone(UTC)

    def _step(self, day: date, periods: int) -> date:
        if self.period == "daily":
            return day + timedelta(days=periods)
        if self.period == "weekly":
            return day + timedelta(days=7 * periods)
        month = day.year * 12 + day.month - 1 + periods
        return day.replace(year=month // 12, month=month % 12 + 1)


Rule = Every | Calendar


def parse(value: object) -> Rule | None:
    """A setting's value as a rule; None when the task is off. ValueError says what is wrong."""
    if value is None or isinstance(value, bool):
        if value:
            raise ValueError("a schedule is seconds or a calendar rule, not True")
        return None
    if isinstance(value, int | float):
        return Every(float(value)) if value > 0 else None
    text = " ".join(str(value).lower().split())
    if text in OFF:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return _calendar(text)
    if seconds < 0:
        raise ValueError(f"an interval is at least 0 seconds, not {value!r}")
    return Every(seconds) if seconds > 0 else None


def _calendar(text: str) -> Calendar:
    match = CALENDAR_PATTERN.match(text)
    if not match:
        raise ValueError(
            f"write seconds, 'daily HH:MM', 'weekly mon HH:MM', 'monthly D HH:MM' or off, "
            f"not {text!r}"
        )
    period, day_text = match["period"], match["day"]
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        raise ValueError(f"no such time of day: {hour:02d}:{minute:02d}")
    day: int | None = None
    if period == "daily" and day_text is not None:
        raise ValueError(f"'daily' takes only a time: {text!r}")
    if period == "weekly":
        if day_text not in WEEKDAYS:
            raise ValueError(f"'weekly' takes a weekday ({', '.join(WEEKDAYS)}): {text!r}")
        day = WEEKDAYS.index(day_text)
    if period == "monthly":
        if day_text is None or not day_text.isdigit() or not 1 <= int(day_text) <= MONTH_DAY_MAX:
            raise ValueError(f"'monthly' takes a day from 1 to {MONTH_DAY_MAX}: {text!r}")
        day = int(day_text)
    return Calendar(period, day, time(hour, minute))
