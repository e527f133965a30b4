"""The hub's catalogs: every template string is translated in every shipped language, the compiled .mo files are
the .po files of today, placeholders survive translation, and Accept-Language picks the right language."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hub import i18n

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("language", i18n.translated_languages())
def test_every_template_string_has_a_translation(language: str) -> None:
    """Extracted from the templates now, so a new string without a translation fails here."""
    gaps = i18n.missing(language)
    assert not gaps, (
        f"{len(gaps)} template strings have no {language} translation; run `python -m hub.i18n update`, "
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
