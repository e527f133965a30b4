"""Typed keys for what the application holds."""

from __future__ import annotations

from aiohttp import web

from hub.accounts import AccountRegistry
from hub.activity import ActivityTracker
from hub.auth import AccessPolicy, Authenticator
from hub.config import Settings
from hub.db import Sessionmaker
from hub.dependencies import DependencyMonitor
from hub.docker_spawner import DockerSpawner
from hub.first_admin import FirstAdminSetup
from hub.metrics import HubMetrics
from hub.security import LoginThrottle
from hub.servers import ServerManager
from hub.tokens import TokenStore
from hub.traefik import TraefikFileProxy
from hub.users import UserDirectory

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", Sessionmaker)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
ACCESS_POLICY = web.AppKey("access_policy", AccessPolicy)
SPAWNER = web.AppKey("spawner", DockerSpawner)
PROXY = web.AppKey("proxy", TraefikFileProxy)
SERVERS = web.AppKey("servers", ServerManager)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
FIRST_ADMIN = web.AppKey("first_admin", FirstAdminSetup)
TOKENS = web.AppKey("tokens", TokenStore)
ACTIVITY = web.AppKey("activity", ActivityTracker)
USERS = web.AppKey("users", UserDirectory)
METRICS = web.AppKey("metrics", HubMetrics)
DEPENDENCIES = web.AppKey("dependencies", DependencyMonitor)
ACCOUNTS = web.AppKey("accounts", AccountRegistry)
