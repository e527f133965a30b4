"""Languages: gettext catalogs for the hub's pages, chosen per request.

The language comes from the ``hub-lang`` cookie (set by the picker in the page footer, POST /hub/language) or else
from the browser's ``Accept-Language``. Templates call ``_()``/``gettext()``/``ngettext()`` and ``{% trans %}``
(Jinja2's i18n extension, new-style gettext); the functions come from each request's template context, so two
requests in different languages never share a translation object.

Catalogs live in ``hub/translations/<lang>/LC_MESSAGES/messages.po`` with the compiled ``messages.mo`` next to it.
Text made in Python for a page is marked too: ``N_("...")`` for a fixed message, ``L_("... %(name)s", name=...)``
and ``LN_(singular, plural, count)`` for one with names (a :class:`Text`: English as a str, translated by the page
that shows it with :func:`gettext_for` or the templates' ``tr()``). The REST API and the CLI stay English.

After changing a template or a marked Python string: ``python -m hub.i18n update``, translate the new entries,
``python -m hub.i18n compile``.
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

from hub.request_view import RequestView

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
# Messages written in Python: N_("...") (no names), L_("... %(name)s", name=...), LN_(singular, plural, count).
PYTHON_KEYWORDS: dict[str, Any] = {"N_": None, "L_": None, "LN_": (1, 2)}
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


def chosen_language(request: RequestView) -> str:
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
    catalog = translations(language)
    return {
        **template_functions(catalog),
        "tr": functools.partial(translate, catalog),  # text made in Python (flash messages, progress, labels)
        "lang": language,
        "languages": LANGUAGES,
        "here": here,
    }


def install(environment: jinja2.Environment) -> None:
    """Jinja2's i18n extension with new-style gettext; English (no translation) where a page is rendered
    without the per-request context."""
    environment.add_extension("jinja2.ext.i18n")
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    environment.globals.update(lang=SOURCE_LANGUAGE, languages=LANGUAGES, tr=str)


def N_(message: str) -> str:
    """Marks a message written in Python for the catalogs (``python -m hub.i18n update`` finds it); the page that
    shows it translates it with :func:`gettext_for` (never put it through a template's ``_()``: that treats the
    text as markup)."""
    return message


class Text(str):
    """A message made in Python for a person's page, with names filled in: as a ``str`` it is the English text (for
    logs, the REST API and CLI output), and it keeps its msgid and names so a page can show it in the reader's
    language (:func:`translate`). Names are filled in after translation, so a user's input never becomes a msgid;
    a name that is itself a Text is translated too."""

    msgid: str
    plural: str | None
    number: int
    names: dict[str, object]

    def __new__(
        cls, msgid: str, plural: str | None = None, number: int = 1, names: dict[str, object] | None = None
    ) -> Text:
        filled = dict(names or {})
        if plural is not None:
            filled.setdefault("num", number)
        english = _fill(msgid if plural is None or number == 1 else plural, filled, None)
        self = super().__new__(cls, english)
        self.msgid, self.plural, self.number, self.names = msgid, plural, number, filled
        return self

    def __getnewargs__(self) -> tuple[str]:  # copies keep the English text
        return (str(self),)

    def in_language(self, catalog: stdlib_gettext.NullTranslations) -> str:
        """The text in the catalog's language (English where the catalog has no translation)."""
        if self.plural is None:
            return _fill(catalog.gettext(self.msgid), self.names, catalog)
        return _fill(catalog.ngettext(self.msgid, self.plural, self.number), self.names, catalog)


def _fill(text: str, names: dict[str, object], catalog: stdlib_gettext.NullTranslations | None) -> str:
    if not names:
        return text
    values = {
        key: translate(catalog, value) if catalog is not None and isinstance(value, Text) else value
        for key, value in names.items()
    }
    try:
        return text % values
    except (KeyError, ValueError, TypeError):  # a broken translation shows its words, never a crash
        return text


def L_(message: str, /, **names: object) -> Text:
    """A message written in Python with ``%(name)s`` placeholders, marked for the catalogs; the names are filled in
    now in English and again after translation on the page that shows it (:func:`translate`)."""
    return Text(message, names=names)


def LN_(singular: str, plural: str, count: int, /, **names: object) -> Text:
    """:func:`L_` with a plural form; ``%(num)d`` is the count."""
    return Text(singular, plural, count, names)


def joined(parts: list[str], separator: str = " ") -> Text:
    """Messages (each marked with N_, L_ or LN_) shown as one, each part translated on its own."""
    names: dict[str, object] = {
        f"part{number}": part if isinstance(part, Text) else Text(part) for number, part in enumerate(parts)
    }
    return Text(separator.replace("%", "%%").join(f"%({key})s" for key in names), names=names)


def translate(catalog: stdlib_gettext.NullTranslations, message: str) -> str:
    """A message in the catalog's language: a :class:`Text` with its names, an ``N_()`` string by its msgid (any
    other text, a user's or a log's, has no entry and stays as it is)."""
    if isinstance(message, Text):
        return message.in_language(catalog)
    return catalog.gettext(message) if message else message


def gettext_for(request: RequestView) -> Callable[[str], str]:
    """Translation into the request's language, for messages written in Python (flash messages, errors, progress):
    ``N_()`` strings and :class:`Text` made by ``L_()``/``LN_()``."""
    return functools.partial(translate, translations(chosen_language(request)))


# --- catalogs: extract, update, compile, check (needs Babel, a dependency of the hub) ---


def catalog_path(language: str, suffix: str = "po") -> Path:
    return TRANSLATIONS_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.{suffix}"


def extract(templates: Path = TEMPLATES_DIR, sources: Path = PACKAGE_DIR) -> Any:
    """The template strings and the marked Python strings as a Babel catalog (what the .pot file holds)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="containerhub", fuzzy=False)
    method_map = [("**.html", EXTRACT_METHOD)]
    options_map = {"**.html": EXTRACT_OPTIONS}
    found = list(extract_from_dir(templates, method_map, options_map, strip_comment_tags=True))
    # messages written in Python, marked with N_(), L_() or LN_() (flash messages, errors, progress, labels)
    found += extract_from_dir(
        sources, [("**.py", "python")], keywords=PYTHON_KEYWORDS, comment_tags=("i18n:",), strip_comment_tags=True
    )
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


def missing(language: str, templates: Path = TEMPLATES_DIR, sources: Path = PACKAGE_DIR) -> list[str]:
    """Template and Python strings the language's catalog does not translate (or marks fuzzy)."""
    catalog = read_catalog(language)
    gaps = []
    for message in extract(templates, sources):
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
        print("\n".join(problems) or "every template and Python string is translated")
        return 1 if problems else 0
    else:
        print("usage: python -m hub.i18n update|compile|check", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
