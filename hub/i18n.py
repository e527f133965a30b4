"""Languages: gettext catalogs for the hub's pages, chosen per request.

The language comes from the ``hub-lang`` cookie (set by the picker in the page footer, POST /hub/language) or else
from the browser's ``Accept-Language``. Templates call ``_()``/``gettext()``/``ngettext()`` and ``{% trans %}``
(Jinja2's i18n extension, new-style gettext); the functions come from each request's template context, so two
requests in different languages never share a translation object.

Catalogs live in ``hub/translations/<lang>/LC_MESSAGES/messages.po`` with the compiled ``messages.mo`` next to it.
After changing a template: ``python -m hub.i18n update``, translate the new entries, ``python -m hub.i18n compile``.
"""

from __future__ import annotations

import functools
import gettext as stdlib_gettext
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

PACKAGE_DIR = Path(__file__).parent
TRANSLATIONS_DIR = PACKAGE_DIR / "translations"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
DOMAIN = "messages"
COOKIE = "hub-lang"
SOURCE_LANGUAGE = "en"
# The shipped languages, each named in itself (as the picker shows it).
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "fr": "Français"}
# Babel's jinja2 extractor, with {% trans %} blocks trimmed as the hub's environment trims them.
EXTRACT_METHOD = "jinja2.ext:babel_extract"
EXTRACT_OPTIONS = {"trimmed": "true", "silent": "false"}
_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


@functools.cache
def translations(language: str) -> stdlib_gettext.NullTranslations:
    """The compiled catalog of a shipped language (English, the source, translates nothing)."""
    if language not in LANGUAGES or language == SOURCE_LANGUAGE:
        return stdlib_gettext.NullTranslations()
    return stdlib_gettext.translation(DOMAIN, TRANSLATIONS_DIR, [language], fallback=True)


def negotiate(accept_language: str | None) -> str:
    """The shipped language the browser prefers most (``Accept-Language``), English when none fits."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")[:32]):
        match = _LANGUAGE_RANGE.match(item)
        if not match:
            continue
        try:
            quality = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        primary = match.group(1).split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else SOURCE_LANGUAGE


def chosen_language(request: web.Request) -> str:
    """The picker's choice (a valid cookie) or else the browser's preference."""
    picked = request.cookies.get(COOKIE, "")
    if picked in LANGUAGES:
        return picked
    return negotiate(request.headers.get("Accept-Language"))


def _markup_aware(rv: str, context: jinja2.runtime.Context, variables: dict[str, Any]) -> str:
    """New-style gettext's finishing step: in an autoescaped page the translation is markup and the
    variables put into it are escaped; ``%(name)s`` placeholders are filled in (and ``%%`` becomes ``%``,
    as {% trans %} writes a percent sign)."""
    if context.eval_ctx.autoescape:
        rv = Markup(rv)
    return rv % variables


def template_functions(catalog: stdlib_gettext.NullTranslations) -> dict[str, Callable[..., str]]:
    """``_``, ``gettext`` and ``ngettext`` for one request's pages, bound to its catalog."""

    @jinja2.pass_context
    def gettext(__context: jinja2.runtime.Context, __string: str, **variables: Any) -> str:
        return _markup_aware(catalog.gettext(__string), __context, variables)

    @jinja2.pass_context
    def ngettext(
        __context: jinja2.runtime.Context, __singular: str, __plural: str, __num: int, **variables: Any
    ) -> str:
        variables.setdefault("num", __num)
        return _markup_aware(catalog.ngettext(__singular, __plural, __num), __context, variables)

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


def request_context(request: web.Request) -> dict[str, object]:
    """What every page needs for its language: the gettext functions, ``lang`` and the picker's choices."""
    language = chosen_language(request)
    here = request.path_qs if request.method == "GET" else ""  # where the picker returns to (else home)
    return {**template_functions(translations(language)), "lang": language, "languages": LANGUAGES, "here": here}


def install(environment: jinja2.Environment) -> None:
    """Jinja2's i18n extension with new-style gettext; English (no translation) where a page is rendered
    without the per-request context."""
    environment.add_extension("jinja2.ext.i18n")
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    environment.globals.update(lang=SOURCE_LANGUAGE, languages=LANGUAGES)


def N_(message: str) -> str:
    """Marks a message written in Python for the catalogs (``python -m hub.i18n update`` finds it); the page that
    shows it translates it with :func:`gettext_for` (never put it through a template's ``_()``: that treats the
    text as markup)."""
    return message


def gettext_for(request: web.Request) -> Callable[[str], str]:
    """Plain gettext in the request's language, for messages written in Python (flash messages, errors)."""
    return translations(chosen_language(request)).gettext


# --- catalogs: extract, update, compile, check (needs Babel, a dependency of the hub) ---


def catalog_path(language: str, suffix: str = "po") -> Path:
    return TRANSLATIONS_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.{suffix}"


def extract(templates: Path = TEMPLATES_DIR) -> Any:
    """The template strings as a Babel catalog (what the .pot file holds)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="containerhub", fuzzy=False)
    method_map = [("**.html", EXTRACT_METHOD)]
    options_map = {"**.html": EXTRACT_OPTIONS}
    found = list(extract_from_dir(templates, method_map, options_map, strip_comment_tags=True))
    # messages written in Python, marked with N_() (error titles, the most common refusals)
    found += extract_from_dir(PACKAGE_DIR, [("**.py", "python")], keywords={"N_": None}, strip_comment_tags=True)
    for filename, lineno, message, comments, context in found:
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def translated_languages() -> list[str]:
    return [language for language in LANGUAGES if language != SOURCE_LANGUAGE]


def read_catalog(language: str) -> Any:
    from babel.messages.pofile import read_po

    with catalog_path(language).open("rb") as handle:
        return read_po(handle, locale=language)


def compiled(language: str) -> bytes:
    """The .mo file's bytes for a language's .po file."""
    import io

    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, read_catalog(language), use_fuzzy=False)
    return buffer.getvalue()


def missing(language: str, templates: Path = TEMPLATES_DIR) -> list[str]:
    """Template strings the language's catalog does not translate (or marks fuzzy)."""
    catalog = read_catalog(language)
    gaps = []
    for message in extract(templates):
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        strings = found.string if found is not None else None
        if isinstance(strings, tuple | list):
            ok = bool(strings) and all(strings)
        else:
            ok = bool(strings)
        if not ok or (found is not None and found.fuzzy):
            gaps.append(message.id if isinstance(message.id, str) else message.id[0])
    return gaps


def update() -> None:
    """Write messages.pot from the templates and merge it into every language's .po file."""
    from babel.messages.pofile import read_po, write_po

    template = extract()
    with (TRANSLATIONS_DIR / f"{DOMAIN}.pot").open("wb") as handle:
        write_po(handle, template, width=120, omit_header=False)
    for language in translated_languages():
        path = catalog_path(language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            catalog.update(template, no_fuzzy_matching=True)
        else:
            from babel.messages.catalog import Catalog

            catalog = Catalog(locale=language, project="containerhub")
            catalog.update(template, no_fuzzy_matching=True)
            path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=120, ignore_obsolete=True, include_previous=False)


def compile_all() -> None:
    for language in translated_languages():
        catalog_path(language, "mo").write_bytes(compiled(language))


def _lines(language: str) -> Iterator[str]:
    for msgid in missing(language):
        yield f"{language}: no translation for {msgid!r}"


def main(argv: list[str]) -> int:
    """python -m hub.i18n update|compile|check"""
    command = argv[0] if argv else ""
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        problems = [line for language in translated_languages() for line in _lines(language)]
        problems += [
            f"{language}: messages.mo is older than messages.po (run python -m hub.i18n compile)"
            for language in translated_languages()
            if not catalog_path(language, "mo").exists()
            or catalog_path(language, "mo").read_bytes() != compiled(language)
        ]
        print("\n".join(problems) or "every template string is translated")
        return 1 if problems else 0
    else:
        print("usage: python -m hub.i18n update|compile|check", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
