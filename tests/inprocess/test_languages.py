"""Languages on the hub's pages, the whole app in process: the browser's Accept-Language, the picker in the
footer (CSRF, validated, kept in the hub-lang cookie) and <html lang>."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from hub.auth.native import set_password
from hub.keys import ACCOUNTS

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
