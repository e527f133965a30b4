"""Database tables: users and their servers."""

from __future__ import annotations

import datetime as dt
import enum
import time

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class ServerState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    admin: Mapped[bool] = mapped_column(default=False)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_activity: Mapped[dt.datetime | None] = mapped_column(default=None)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    sessions_valid_after: Mapped[float] = mapped_column(default=time.time)
    """Sessions issued before this time (seconds since the epoch) no longer count: logging out moves it."""
    volume_name: Mapped[str | None] = mapped_column(String(128), default=None)
    """The Docker volume that holds this account's files, named with the account's id when first needed,
    so an account deleted and made again under the same name never mounts the old account's files."""
    auth_method: Mapped[str | None] = mapped_column(String(32), default=None)
    """The login method this account belongs to (auth.methods[].name); only that method logs it in.
    None for accounts from before methods had names: the hub gives them its first method at start."""
    auth_subject: Mapped[str | None] = mapped_column(String(255), default=None)
    """The login provider's fixed id of the person (OIDC ``sub``, GitHub's numeric id), bound at the first login:
    a provider name that changes hands later (a renamed GitHub account) cannot take over the account."""
    password_must_change: Mapped[bool] = mapped_column(default=False, server_default="0")
    """Set when an admin reset the password: the next login leads to the change-password page first."""
    auth_state: Mapped[str | None] = mapped_column(Text, default=None)
    """What the login method hands to the user's server (auth_state_env), encrypted; renewed at each login."""
    servers: Mapped[list[Server]] = relationship(back_populates="owner", cascade="all, delete-orphan", lazy="selectin")
    """The default server (name "") and the named ones."""
    groups: Mapped[list[Group]] = relationship(secondary="user_groups", back_populates="users", lazy="raise_on_sql")

    def server_named(self, name: str = "") -> Server | None:
        """One of the user's servers; "" is the default server."""
        return next((server for server in self.servers if server.name == name), None)

    @property
    def server(self) -> Server | None:
        """The default server."""
        return self.server_named("")


class Server(Base):
    __tablename__ = "servers"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_servers_user_id_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32), default="", server_default="")
    """"" for the user's default server (/user/<name>/), else the server's name (/user/<name>/<server>/)."""
    image_name: Mapped[str] = mapped_column(String(64))
    container_id: Mapped[str | None] = mapped_column(String(80), default=None)
    container_name: Mapped[str | None] = mapped_column(String(128), default=None)
    volume_name: Mapped[str | None] = mapped_column(String(128), default=None)
    url: Mapped[str | None] = mapped_column(String(255), default=None)
    """Where Traefik and the hub reach the server, e.g. http://172.19.0.2:8888."""
    state: Mapped[ServerState] = mapped_column(
        Enum(ServerState, native_enum=False, length=16), default=ServerState.STOPPED
    )
    started: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_activity: Mapped[dt.datetime | None] = mapped_column(default=None)
    route_secret: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    """Why the last start failed or the server stopped, in words for the user."""
    error_log: Mapped[str | None] = mapped_column(Text, default=None)
    """The last lines of the server's log that go with ``error``, kept apart from the message."""
    user_options: Mapped[str | None] = mapped_column(Text, default=None)
    """The resources chosen at its last start, as JSON (``{"mem_limit": "2g", "cpu_limit": "1", "gpus": "0"}``,
    see hub/resources.py); None for servers started before choices existed."""
    gpu_ids: Mapped[str | None] = mapped_column(String(255), default=None)
    """The host GPUs its container was given, comma-separated (as its ``hub.gpus`` label); None for none."""
    owner: Mapped[User] = relationship(back_populates="servers", lazy="raise_on_sql")


class ApiToken(Base):
    """An API token. Only its SHA-256 is kept; the token itself is shown once, when it is made."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    hashed: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    prefix: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(String(200), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_activity: Mapped[dt.datetime | None] = mapped_column(default=None)
    owner: Mapped[User] = relationship(lazy="joined")


class HubState(Base):
    """Small named values shared by the hub and the command line, such as the accounts generation."""

    __tablename__ = "hub_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


user_groups = Table(
    "user_groups",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Group(Base):
    """A named set of users: managed by admins (panel, REST API) or synced from a login method."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    users: Mapped[list[User]] = relationship(secondary="user_groups", back_populates="groups", lazy="raise_on_sql")


class SignupRequest(Base):
    """Someone asked for a built-in account; an admin approves (the account is made) or rejects it."""

    __tablename__ = "signup_requests"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, approved or rejected."""
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided: Mapped[dt.datetime | None] = mapped_column(default=None)


class Share(Base):
    """One server of a user shared with another user or with a group (exactly one of the two), until
    ``expires_at`` (None: until revoked). Goes with the server, the user or the group (database cascade)."""

    __tablename__ = "shares"
    __table_args__ = (
        UniqueConstraint("server_id", "user_id", name="uq_shares_server_id_user_id"),
        UniqueConstraint("server_id", "group_id", name="uq_shares_server_id_group_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True, default=None)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class ShareCode(Base):
    """A share link: whoever accepts its code while logged in gets a share of the server. Only the code's
    SHA-256 is kept; the code itself is shown once. Codes always expire."""

    __tablename__ = "share_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    hashed: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    exchange_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_exchanged_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Announcement(Base):
    """A message from an admin shown on every hub page until ``ends_at`` (None: until removed)."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    """The message as the admin wrote it; rendered escaped, with http(s) links only (hub/safe_text.py)."""
    ends_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64), default=None)
    """The name of the admin who wrote it (kept as a name: the message outlives the account)."""


class UsageSample(Base):
    """One round of the usage sampler (hub/usage.py): when, and how many servers were running."""

    __tablename__ = "usage_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    taken: Mapped[dt.datetime] = mapped_column(index=True)
    running: Mapped[int] = mapped_column(Integer)


class ServerUsageSample(Base):
    """What one running server used at one round of the sampler (Docker's stats), with its limits then."""

    __tablename__ = "usage_server_samples"

    id: Mapped[int] = mapped_column(primary_key=True)
    taken: Mapped[dt.datetime] = mapped_column(index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    """Kept as names: the numbers outlive the account and the server."""
    server_name: Mapped[str] = mapped_column(String(32), default="")
    cpu_percent: Mapped[float | None] = mapped_column(Float, default=None)
    """Percent of one CPU since the round before (150: one and a half CPUs); None at a server's first round."""
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    memory_limit_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cpu_limit: Mapped[float | None] = mapped_column(Float, default=None)


class SpawnRecord(Base):
    """One finished start of a server: how long it took, and whether the server came up."""

    __tablename__ = "spawn_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    finished: Mapped[dt.datetime] = mapped_column(index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    server_name: Mapped[str] = mapped_column(String(32), default="")
    image_name: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column()
