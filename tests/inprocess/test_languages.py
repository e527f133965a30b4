"""Languages on the hub's pages, the whole app in process: the browser's Accept-Language, the picker in the
footer (CSRF, validated, kept in the hub-lang cookie) and <html lang>."""

from __future__ import annotations

import asyncio
import json
import re

from aiohttp.test_utils import TestClient

from hub.auth.native import set_password
from hub.errors import SpawnError
from hub.i18n import L_
from hub.keys import ACCOUNTS
from tests.fakes import FakeSpawner
from tests.inprocess.conftest import TokenMaker
from tests.inprocess.pages import log_in

XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


async def page(client: TestClient, path: str, headers: dict[str, str] | None = None) -> str:
    response = await client.get(path, headers=headers or {})
    return await response.text()


def csrf_of(text: str) -> str:
    match = XSRF.search(text)
    assert match
    return match.group(1)


def language_cookie(client: TestClient) -> str | None:
    cookie = next((morsel for morsel in client.session.cookie_jar if morsel.key == "hub-lang"), None)
    return cookie.value if cookie else None


async def test_the_browsers_language_chooses_the_login_pages_language(app_client: TestClient) -> None:
    english = await page(app_client, "/hub/login")
    assert '<html lang="en">' in english and "<h1>Log in</h1>" in english
    german = await page(app_client, "/hub/login", GERMAN)
    assert '<html lang="de">' in german and "<h1>Anmelden</h1>" in german
    assert "<title>Anmelden · " in german and "Benutzername" in german and ">Passwort" in german
    french = await page(app_client, "/hub/login", {"Accept-Language": "fr-CA,fr;q=0.8"})
    assert '<html lang="fr">' in french and "<h1>Se connecter</h1>" in french
    unknown = await page(app_client, "/hub/login", {"Accept-Language": "ja"})
    assert '<html lang="en">' in unknown and "<h1>Log in</h1>" in unknown
    missing = await app_client.get("/hub/nowhere", headers=GERMAN)  # error pages are in the language too
    assert missing.status == 404 and "Zurück zu Ihrer Startseite" in await missing.text()


async def test_the_picker_overrides_the_browser_and_the_choice_stays(app_client: TestClient) -> None:
    login = await page(app_client, "/hub/login", GERMAN)
    assert '<option value="de" lang="de" selected>Deutsch</option>' in login
    picked = await app_client.post(
        "/hub/language",
        data={"_xsrf": csrf_of(login), "lang": "fr", "next": "/hub/login?next=%2Fhub%2Fhome"},
        headers=GERMAN,
        allow_redirects=False,
    )
    assert picked.status == 303 and picked.headers["Location"] == "/hub/login?next=/hub/home"
    assert language_cookie(app_client) == "fr"
    again = await page(app_client, "/hub/login", GERMAN)
    assert '<html lang="fr">' in again and "<h1>Se connecter</h1>" in again

    # After logging in, the home page is in French too.
    await set_password(app_client.server.app[ACCOUNTS], "alice", "alice password 123")
    form = {"_xsrf": csrf_of(again), "username": "alice", "password": "alice password 123"}
    assert (await app_client.post("/hub/login", data=form, allow_redirects=False)).status in (302, 303)
    home = await page(app_client, "/hub/home", GERMAN)
    assert "<h1>Votre serveur</h1>" in home and "Démarrer mon serveur" in home and ">Se déconnecter<" in home

    # Back to English with the picker; somewhere else than this hub is never a place to return to.
    back = await app_client.post(
        "/hub/language",
        data={"_xsrf": csrf_of(home), "lang": "en", "next": "https://elsewhere.example/"},
        allow_redirects=False,
    )
    assert back.status == 303 and back.headers["Location"] == "/hub/home"
    assert "<h1>Your server</h1>" in await page(app_client, "/hub/home", GERMAN)


async def test_a_language_the_hub_does_not_ship_is_refused(app_client: TestClient) -> None:
    login = await page(app_client, "/hub/login")
    refused = await app_client.post(
        "/hub/language", data={"_xsrf": csrf_of(login), "lang": "xx<script>"}, allow_redirects=False
    )
    text = await refused.text()
    assert refused.status == 400 and "no language called" in text and "<script>" not in text
    assert language_cookie(app_client) is None
    # A cookie the picker did not set (a forged value) is ignored: the browser's language counts.
    app_client.session.cookie_jar.update_cookies({"hub-lang": "../../etc"})
    forged = await page(app_client, "/hub/login", GERMAN)
    assert '<html lang="de">' in forged and "<h1>Anmelden</h1>" in forged


async def test_the_picker_needs_the_forms_csrf_token(app_client: TestClient) -> None:
    await page(app_client, "/hub/login")  # a session exists, but the post carries no token of it
    refused = await app_client.post("/hub/language", data={"lang": "de"}, allow_redirects=False)
    assert refused.status == 403
    assert language_cookie(app_client) is None
    forged = await app_client.post("/hub/language", data={"lang": "de", "_xsrf": "forged"}, allow_redirects=False)
    assert forged.status == 403 and language_cookie(app_client) is None


async def test_errors_and_refusals_are_in_the_readers_language(app_client: TestClient) -> None:
    login = await page(app_client, "/hub/login", GERMAN)
    wrong = await app_client.post(
        "/hub/login", data={"_xsrf": csrf_of(login), "username": "alice", "password": "not it"}, headers=GERMAN
    )
    assert wrong.status == 403 and "Benutzername oder Passwort ist falsch." in await wrong.text()
    missing = await app_client.get("/hub/nowhere", headers={"Accept-Language": "fr"})
    text = await missing.text()
    assert missing.status == 404 and "<h1>Page introuvable</h1>" in text and '<html lang="fr">' in text
    # refused by the CSRF check, before any page context is made: still German, and the API stays English
    refused = await app_client.post("/hub/logout", data={}, headers=GERMAN)
    text = await refused.text()
    assert refused.status == 403 and '<html lang="de">' in text and "<h1>Nicht erlaubt</h1>" in text
    assert "Dieses Formular ist abgelaufen" in text
    api = await app_client.get("/hub/api/users/nobody", headers=GERMAN)
    assert api.status in (401, 403, 404) and (await api.json())["message"].isascii()


async def test_the_password_pages_messages_are_in_the_readers_language(app_client: TestClient) -> None:
    french = {"Accept-Language": "fr"}
    await set_password(app_client.server.app[ACCOUNTS], "bob", "bob password 123")
    login = await page(app_client, "/hub/login", french)
    form = {"_xsrf": csrf_of(login), "username": "bob", "password": "bob password 123"}
    assert (await app_client.post("/hub/login", data=form, allow_redirects=False)).status in (302, 303)
    change = await page(app_client, "/hub/change-password", french)
    assert "<h1>Changer votre mot de passe</h1>" in change
    differ = await app_client.post(
        "/hub/change-password",
        data={
            "_xsrf": csrf_of(change),
            "current_password": "bob password 123",
            "new_password": "a new password 1",
            "new_password_again": "another one 2",
        },
        headers=french,
    )
    assert differ.status == 400 and "Les deux nouveaux mots de passe diffèrent." in await differ.text()


async def first_event(client: TestClient, path: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    """The first server-sent event of a progress stream (the start stays in flight, so the stream stays open)."""
    response = await client.get(path, headers=headers or {})
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    chunk = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
    response.close()
    data = next(line for line in chunk.decode().splitlines() if line.startswith("data: "))
    return dict(json.loads(data.removeprefix("data: ")))


async def test_a_german_admin_reads_the_panels_messages_and_a_starts_progress_in_german(
    app_client: TestClient, spawner: FakeSpawner, tokens_of: TokenMaker
) -> None:
    spawner.gate = asyncio.Event()  # alice's start stays in flight, so its progress can be read
    csrf = await log_in(app_client, "admin", "/hub/admin")
    app_client.session.cookie_jar.update_cookies({"hub-lang": "de"})  # the picker's choice
    confirm = await page(app_client, "/hub/admin/users/alice/delete")
    assert "<h1>alice löschen?</h1>" in confirm and "Das stoppt den Server von alice und löscht das Konto." in confirm
    assert ">alice löschen</button>" in confirm

    granted = await app_client.post("/hub/admin/users/bob/admin", data={"_xsrf": csrf, "admin": "1"})
    assert granted.status == 200 and 'id="flash">bob ist jetzt Admin.</p>' in await granted.text()
    started = await app_client.post("/hub/admin/users/alice/start", data={"_xsrf": csrf, "image": "lab"})
    assert 'id="flash">Lab wird für alice gestartet.</p>' in await started.text()

    # the progress page and the stream it reads speak the viewer's language; the names stay as they are
    progress = await page(app_client, "/hub/spawn-pending/alice")
    assert "<li>Ihr Lab-Server wird gestartet</li>" in progress and "Starting your" not in progress
    german = await first_event(app_client, "/hub/api/users/alice/server/progress")
    assert german["message"] == "Ihr Lab-Server wird gestartet"
    app_client.session.cookie_jar.update_cookies({"hub-lang": "fr"})
    french = await first_event(app_client, "/hub/api/users/alice/server/progress")
    assert french["message"] == "Démarrage de votre serveur Lab"

    # an API client that asks for no language (JupyterHub's) reads English
    app_client.session.cookie_jar.clear()
    token = await tokens_of("admin")
    api = await first_event(app_client, "/hub/api/users/alice/server/progress", {"Authorization": f"token {token}"})
    assert api["message"] == "Starting your Lab server"
    spawner.gate.set()


async def test_a_failed_start_and_the_roster_preview_are_in_the_readers_language(
    app_client: TestClient, spawner: FakeSpawner
) -> None:
    csrf = await log_in(app_client, "admin", "/hub/admin")
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    preview = await app_client.post(
        "/hub/admin/import",
        data={"_xsrf": csrf, "roster": "name,groups,admin\ncarol,maths,yes\nalice,art,\n"},
        headers=french,
    )
    text = await preview.text()
    assert "1 nouvel utilisateur, 1 modifié, 0 inchangé, 2 nouveaux groupes. " in text
    assert "<td>rejoint art</td>" in text
    bad = await app_client.post(
        "/hub/admin/import", data={"_xsrf": csrf, "roster": "name\nCarol Smith\n"}, headers=french
    )
    assert bad.status == 400 and "ligne 2 : le nom &#39;Carol Smith&#39; contient une espace" in await bad.text()

    # a start that fails: the progress page shows why in German, the database and the admin panel's row keep
    # the English text it was stored with
    async def exits(*args: object, **kwargs: object) -> None:
        raise SpawnError(L_("Your server stopped while starting (exit code %(code)s).", code=3), "exit 3", "it broke\n")

    spawner.start = exits  # type: ignore[method-assign]
    started = await app_client.post("/hub/admin/users/bob/start", data={"_xsrf": csrf, "image": "lab"})
    assert started.status == 200
    for _ in range(100):
        failed = await app_client.get("/hub/spawn-pending/bob", headers={"Accept-Language": "de"})
        if failed.status == 500:
            break
        await asyncio.sleep(0.05)
    text = await failed.text()
    assert failed.status == 500 and "Ihr Server hat beim Start aufgehört (Exit-Code 3)." in text
    assert "<h1>Ihr Server konnte nicht starten</h1>" in text
    home = await page(app_client, "/hub/admin")
    assert "Your server stopped while starting (exit code 3)." in home
