"""The office's clock: the one place that says what day it is for the office and when its days
begin and end.

The agreement is kept on the office's calendar (Asia/Shanghai unless configured): an NDA, a
window or a term ends at the end of the office's day, whatever zone the host runs in. Instants
(the trail's ``at``, ``created_at``...) stay UTC; whatever turns an instant into a day, or a day
into instants, asks this clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


class OfficeClock:
    def __init__(self, zone: str) -> None:
        self.zone = ZoneInfo(zone)

    @property
    def name(self) -> str:
        """The zone's name as people read it (``Asia/Shanghai``)."""
        return self.zone.key

    def now(self) -> datetime:
        """This instant, in the office's zone."""
        return datetime.now(self.zone)

    def today(self) -> date:
        """The office's day now."""
        return self.now().date()

    def day_of(self, moment: datetime) -> date:
        """The office's day a (timezone-aware) instant falls on."""
        return self.local(moment).date()

    def local(self, moment: datetime) -> datetime:
        """An instant as the office's wall clock reads it; a naive one is taken as UTC."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def start_of_day(self, day: date) -> datetime:
        """The first instant of the office's day ``day`` (00:00 office time)."""
        return datetime.combine(day, time.min, tzinfo=self.zone)

    def end_of_day(self, day: date) -> datetime:
        """The instant the office's day ``day`` ends: 00:00 of the next day, office time.

        Exclusive: an instant belongs to ``day`` when start_of_day(day) <= it < end_of_day(day).
        """
        return self.start_of_day(day + timedelta(days=1))

    def last_day(self, end: datetime) -> date:
        """The last office day before an exclusive end instant (a grant's ``expires_at``):
        the inverse of :meth:`end_of_day`."""
        return self.day_of(end - timedelta(microseconds=1))
