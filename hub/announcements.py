"""Announcements: messages from admins shown on every hub page until their end time or until removed.

The one writer of the ``announcements`` table. Every page shows the current ones, so they are kept in memory:
read at start, changed after each write made here (only the hub writes them: the panel and the REST API).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup
from sqlalchemy import delete, select

from hub.db import Sessionmaker
from hub.errors import BadRequest, NotFound
from hub.i18n import L_, N_
from hub.models import Announcement, utcnow
from hub.safe_text import render_safe

MAX_LENGTH = 1000
"""The most characters an announcement may have."""


def iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as JupyterHub writes times; None stays None."""
    if moment is None:
        return None
    return as_utc(moment).isoformat().replace("+00:00", "Z")


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A time with its zone; a time without one (SQLite gives those back) is taken as UTC."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def parse_end_time(raw: object, utc_offset_minutes: int = 0) -> dt.datetime | None:
    """An end time from the API (ISO 8601) or the panel (``2026-05-01T18:00``); empty or None: no end.

    A time without a zone is local to whoever wrote it, ``utc_offset_minutes`` east of UTC (the panel's
    script sends the browser's offset; the API's default is UTC)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRequest('ends_at must be a time in ISO 8601, as in "2026-05-01T18:00:00Z", or null.')
    try:
        moment = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(
            L_("%(raw)r is not a time: write it in ISO 8601, as in 2026-05-01T18:00:00Z.", raw=raw[:40])
        ) from None
    try:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(minutes=utc_offset_minutes)))
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):  # the year 9999 at UTC-5 is past the last time Python can hold
        raise BadRequest(
            L_("%(raw)r is not a time the hub can keep: choose one before the year 9999.", raw=raw[:40])
        ) from None


def check_text(raw: object) -> str:
    """The text of a new announcement, or BadRequest saying what is wrong with it."""
    if not isinstance(raw, str):
        raise BadRequest('text must be a string, as in {"text": "The hub goes down on Friday at 18:00."}.')
    text = raw.strip()
    if not text:
        raise BadRequest(N_("Write the announcement's text: it is empty."))
    if len(text) > MAX_LENGTH:
        raise BadRequest(
            L_(
                "The announcement is %(count)d characters long; it may have at most %(most)d.",
                count=len(text),
                most=MAX_LENGTH,
            )
        )
    return text


@dataclass(frozen=True, slots=True)
class AnnouncementView:
    id: int
    text: str
    ends_at: dt.datetime | None
    created: dt.datetime
    created_by: str | None

    @property
    def html(self) -> Markup:
        """The text, escaped, with its http(s) links (hub/safe_text.py)."""
        return render_safe(self.text)

    def is_current(self, now: dt.datetime) -> bool:
        return self.ends_at is None or self.ends_at > now

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "ends_at": iso(self.ends_at),
            "created": iso(self.created),
            "created_by": self.created_by,
        }


def view_of(row: Announcement) -> AnnouncementView:
    ends_at = as_utc(row.ends_at) if row.ends_at is not None else None
    return AnnouncementView(row.id, row.text, ends_at, as_utc(row.created), row.created_by)


class AnnouncementBoard:
    """All announcements, in memory (oldest first); ``current()`` is what the pages show."""

    def __init__(self, sessions: Sessionmaker) -> None:
        self._sessions = sessions
        self._all: tuple[AnnouncementView, ...] = ()

    async def load(self) -> None:
        async with self._sessions() as session:
            rows = (await session.execute(select(Announcement).order_by(Announcement.id))).scalars().all()
        self._all = tuple(view_of(row) for row in rows)

    def all(self) -> tuple[AnnouncementView, ...]:
        """Every announcement, those that have ended too (the panel lists them so they can be removed)."""
        return self._all

    def current(self, now: dt.datetime | None = None) -> list[AnnouncementView]:
        """The announcements whose end time has not passed, oldest first."""
        moment = now or utcnow()
        return [item for item in self._all if item.is_current(moment)]

    async def add(self, text: object, ends_at: dt.datetime | None, created_by: str) -> AnnouncementView:
        """Write a new announcement; BadRequest for an empty or too long text or an end time already past."""
        checked = check_text(text)
        if ends_at is not None and ends_at <= utcnow():
            raise BadRequest(
                L_("The end time %(time)s has already passed: choose a time in the future.", time=iso(ends_at))
            )
        row = Announcement(text=checked, ends_at=ends_at, created=utcnow(), created_by=created_by)
        async with self._sessions() as session, session.begin():
            session.add(row)
        view = view_of(row)
        self._all = (*self._all, view)
        return view

    async def remove(self, ident: int) -> None:
        """Remove an announcement; NotFound if there is none with this id."""
        async with self._sessions() as session, session.begin():
            removed = await session.execute(delete(Announcement).where(Announcement.id == ident))
        if not getattr(removed, "rowcount", 0):
            raise NotFound(L_("There is no announcement %(number)s.", number=ident))
        self._all = tuple(item for item in self._all if item.id != ident)


ANNOUNCEMENTS = web.AppKey("announcements", AnnouncementBoard)
