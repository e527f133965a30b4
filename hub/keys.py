"""Typed keys for what the application holds."""

from __future__ import annotations

from aiohttp import web

from hub.accounts import AccountService
from hub.activity import ActivityTracker
from hub.auth import AccessPolicy, LoginMethods
from hub.auth_state import AuthStateBox
from hub.config import Settings
from hub.db import Sessionmaker
from hub.dependencies import DependencyMonitor
from hub.gpus import GPUAllocator
from hub.groups import GroupService
from hub.image_prep import ImagePreparer
from hub.login_guard import LoginThrottle, TrustedProxies
from hub.metrics import HubMetrics
from hub.proxy import Proxy
from hub.reconcile import Reconciler
from hub.servers import ServerManager
from hub.session_reader import SessionReader
from hub.share_relay import RelayRegistry, TicketSigner
from hub.sharing import SharingService
from hub.signups import SignupService
from hub.spawner import Spawner
from hub.tokens import TokenStore
from hub.users import UserDirectory

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", Sessionmaker)
LOGIN_METHODS = web.AppKey("login_methods", LoginMethods)
AUTH_STATE = web.AppKey("auth_state", AuthStateBox)
ACCESS_POLICY = web.AppKey("access_policy", AccessPolicy)
SPAWNER = web.AppKey("spawner", Spawner)
PROXY = web.AppKey("proxy", Proxy)
SERVERS = web.AppKey("servers", ServerManager)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", TrustedProxies)
TOKENS = web.AppKey("tokens", TokenStore)
ACTIVITY = web.AppKey("activity", ActivityTracker)
USERS = web.AppKey("users", UserDirectory)
METRICS = web.AppKey("metrics", HubMetrics)
DEPENDENCIES = web.AppKey("dependencies", DependencyMonitor)
ACCOUNTS = web.AppKey("accounts", AccountService)
RECONCILER = web.AppKey("reconciler", Reconciler)
GROUPS = web.AppKey("groups", GroupService)
SIGNUPS = web.AppKey("signups", SignupService)
GPUS = web.AppKey("gpus", GPUAllocator)
IMAGE_PREP = web.AppKey("image_prep", ImagePreparer)
SHARING = web.AppKey("sharing", SharingService)
SHARE_TICKETS = web.AppKey("share_tickets", TicketSigner)
SHARE_RELAYS = web.AppKey("share_relays", RelayRegistry)
SESSION_READER = web.AppKey("session_reader", SessionReader)
