"""The hub's catalogs: every template string and every message marked in Python (N_, L_, LN_) is translated in every
shipped language, text a page shows is marked, the compiled .mo files are the .po files of today, placeholders
survive translation, names are filled in after translation, and Accept-Language picks the right language."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from pathlib import Path

import pytest

from hub import errors, i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)[#0 +-]*\d*(?:\.\d+)?([a-z])")
"""A named placeholder and its conversion: ``%(name)s``, ``%(num)d``, ``%(seconds)g``, ``%(raw)r``."""
ERRORS = {
    *(name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, errors.HubError)),
    "LoginRefused",
    "NoGPUFree",
}
"""Errors whose first argument is the message a person reads (hub/errors.py and the login's refusals)."""
ENGLISH_ONLY = {
    ("hub/announcements.py", 'ends_at must be a time in ISO 8601, as in "2026-05-01T18:00:00Z", or null.'),
    ("hub/announcements.py", 'text must be a string, as in {"text": "The hub goes down on Friday at 18:00."}.'),
    ("hub/groups.py", 'users must be a list of user names, as in {"users": ["alice", "bob"]}.'),
}
"""Messages only the REST API sends (a JSON body's shape): the API answers in English."""


@pytest.mark.parametrize("language", i18n.translated_languages())
def test_every_template_string_has_a_translation(language: str) -> None:
    """Extracted from the templates and the Python code now, so a new string without a translation fails here."""
    gaps = i18n.missing(language)
    assert not gaps, (
        f"{len(gaps)} strings have no {language} translation; run `python -m hub.i18n update`, "
        f"translate them in hub/translations/{language}/LC_MESSAGES/messages.po, then `python -m hub.i18n compile`: "
        f"{gaps}"
    )


def test_a_new_untranslated_string_is_caught(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(i18n.TEMPLATES_DIR, templates)
    (templates / "extra.html").write_text('<p>{{ _("A sentence nobody translated yet") }}</p>\n')
    for language in i18n.translated_languages():
        assert i18n.missing(language, templates) == ["A sentence nobody translated yet"]


@pytest.mark.parametrize("language", i18n.translated_languages())
def test_the_shipped_mo_file_is_compiled_from_the_po_file(language: str) -> None:
    shipped = i18n.catalog_path(language, "mo")
    assert shipped.exists() and shipped.read_bytes() == i18n.compiled(language), (
        f"{shipped} is out of date: run `python -m hub.i18n compile`"
    )


@pytest.mark.parametrize("language", i18n.translated_languages())
def test_translations_keep_the_placeholders(language: str) -> None:
    for message in i18n.read_catalog(language):
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        wanted = {name for text in ids for name in PLACEHOLDER.findall(text)}
        for text in strings:
            found = set(PLACEHOLDER.findall(text))
            # a singular form may leave out the count ("one GPU"), never add or rename a placeholder
            assert found <= wanted and (found == wanted or len(ids) > 1), (language, message.id, text)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("en-GB,en;q=0.9,de;q=0.8", "en"),
        ("es-ES,es;q=0.9,fr;q=0.5,de;q=0.4", "fr"),
        ("de;q=0.2, fr;q=0.7", "fr"),
        ("ja, zh", "en"),
        ("", "en"),
        (None, "en"),
        ("de;q=0, fr;q=bogus, ;;, DE-at", "de"),
    ],
)
def test_accept_language_picks_the_preferred_shipped_language(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def test_the_german_catalog_translates_a_login_page_string() -> None:
    assert i18n.translations("de").gettext("Log in") == "Anmelden"
    assert i18n.translations("fr").gettext("Log in") == "Se connecter"
    assert i18n.translations("en").gettext("Log in") == "Log in"
    assert i18n.translations("xx").gettext("Log in") == "Log in"


def test_a_new_untranslated_python_string_is_caught(tmp_path: Path) -> None:
    """A message marked in Python with no entry in a catalog fails the check, like a template string."""
    (tmp_path / "module.py").write_text(
        "from hub.i18n import L_, LN_, N_\n"
        'A = N_("A refusal nobody translated yet.")\n'
        'B = L_("%(name)s did something nobody translated yet.", name="x")\n'
        'C = LN_("%(num)d untranslated thing", "%(num)d untranslated things", 2)\n'
        'D = N_("Log in")\n'  # translated already (the login page's)
    )
    for language in i18n.translated_languages():
        assert i18n.missing(language, sources=tmp_path) == [
            "A refusal nobody translated yet.",
            "%(name)s did something nobody translated yet.",
            "%(num)d untranslated thing",
        ]


def python_sources() -> list[tuple[str, ast.AST]]:
    return [
        (path.relative_to(i18n.PACKAGE_DIR.parent).as_posix(), ast.parse(path.read_text(), str(path)))
        for path in sorted(i18n.PACKAGE_DIR.rglob("*.py"))
    ]


def called(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def test_marked_messages_are_literals_the_extractor_can_read() -> None:
    """N_(f"...") or N_(variable) would be skipped by the extraction, so it could never be translated."""
    wrong = []
    for path, tree in python_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and called(node) in ("N_", "L_", "LN_"):
                literals = node.args[: 2 if called(node) == "LN_" else 1]
                if not literals or not all(
                    isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in literals
                ):
                    wrong.append(f"{path}:{node.lineno}: {ast.unparse(node)[:100]}")
    assert not wrong, wrong


def test_text_that_pages_show_is_marked_for_translation() -> None:
    """Error messages, admin flash messages, spawn progress and the forward-auth's refusals are marked (N_, L_, LN_),
    never a bare string or an f-string, so they reach the catalogs. The REST API handlers and the CLI answer in
    English, and the share relay's refusals end WebSocket handshakes that no page shows."""
    unmarked = []
    for path, tree in python_sources():
        if path.startswith("hub/handlers/api") or path in ("hub/cli.py", "hub/handlers/share_relay.py"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name, message = called(node), None
            if name in ERRORS and node.args:
                message = node.args[0]
            elif name in ("flash", "report", "ProgressEvent") and len(node.args) > 1:
                message = node.args[1]
            elif name.startswith("HTTP"):  # aiohttp's web.HTTPForbidden(text=...), a page of its own
                message = next((keyword.value for keyword in node.keywords if keyword.arg == "text"), None)
            if message is None:
                continue
            literal = isinstance(message, ast.Constant) and isinstance(message.value, str) and message.value
            if isinstance(message, ast.JoinedStr) or (literal and (path, message.value) not in ENGLISH_ONLY):
                unmarked.append(f"{path}:{node.lineno}: {name}({ast.unparse(message)[:80]})")
    assert not unmarked, f"mark these with N_(), L_() or LN_() (hub/i18n.py): {unmarked}"


def catalog(entries: dict[str, str]) -> gettext.GNUTranslations:
    """A catalog made in memory, as a compiled .mo file would give it."""
    translations = gettext.NullTranslations()
    translations._catalog = dict(entries)  # type: ignore[attr-defined]
    translations.gettext = lambda message: entries.get(message, message)  # type: ignore[method-assign]
    return translations  # type: ignore[return-value]


def test_names_are_filled_in_after_translation_and_never_translated() -> None:
    shown = i18n.L_("Created the group %(name)s.", name="Log in")  # a name that happens to be a msgid
    assert shown == "Created the group Log in." and shown.msgid == "Created the group %(name)s."
    assert i18n.translate(i18n.translations("de"), shown) == "Die Gruppe Log in wurde angelegt."
    # a name that is itself a marked message (L_, LN_) is translated with it
    wait = i18n.LN_("%(num)d minute", "%(num)d minutes", 3)
    later = i18n.L_("Too many failed attempts. Please wait %(wait)s and try again.", wait=wait)
    assert str(later) == "Too many failed attempts. Please wait 3 minutes and try again."
    assert (
        i18n.translate(i18n.translations("fr"), later)
        == "Trop de tentatives échouées. Attendez 3 minutes et réessayez."
    )
    assert i18n.translate(i18n.translations("de"), later) == (
        "Zu viele Fehlversuche. Bitte warten Sie 3 Minuten und versuchen Sie es erneut."
    )
    # an N_ string by its msgid; text that is no message (a log line, a user's words) stays as it is
    assert i18n.translate(i18n.translations("fr"), i18n.N_("Your server is ready")) == "Votre serveur est prêt"
    assert i18n.translate(i18n.translations("fr"), "Step 3/8 : RUN apt-get") == "Step 3/8 : RUN apt-get"


def test_plural_forms_follow_the_count() -> None:
    german, french = i18n.translations("de"), i18n.translations("fr")
    one, many = (i18n.LN_("Stopped %(num)d server.", "Stopped %(num)d servers.", n) for n in (1, 4))
    assert (str(one), str(many)) == ("Stopped 1 server.", "Stopped 4 servers.")
    assert i18n.translate(french, one) == "1 serveur arrêté." and i18n.translate(french, many) == "4 serveurs arrêtés."
    assert i18n.translate(german, many) == "4 Server gestoppt."


def test_a_broken_translation_shows_words_instead_of_failing() -> None:
    broken = catalog({"Created the group %(name)s.": "Gruppe %(gruppe)s angelegt."})
    assert i18n.translate(broken, i18n.L_("Created the group %(name)s.", name="maths")) == "Gruppe %(gruppe)s angelegt."


def test_messages_joined_into_one_translate_each_part() -> None:
    parts = [i18n.L_("joins %(groups)s", groups="maths, art"), i18n.N_("becomes an admin")]
    joined = i18n.joined(parts, "; ")
    assert joined == "joins maths, art; becomes an admin"
    assert i18n.translate(i18n.translations("de"), joined) == "tritt maths, art bei; wird Admin"
    assert i18n.joined(["50%", "done"]) == "50% done"
