"""Admins' text (announcements, the login message) in pages: escaped, with http(s) links and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.announcements import MAX_LENGTH, check_text, parse_end_time
from hub.errors import BadRequest
from hub.safe_text import render_safe


def test_plain_text_is_escaped() -> None:
    assert render_safe('<script>alert("x")</script> & more') == (
        "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more"
    )


def test_bare_and_worded_web_addresses_become_links() -> None:
    html = render_safe("Down on Friday, see https://status.example.org/page?a=1&b=2. Or [the plan](http://e.org/p).")
    assert html == (
        'Down on Friday, see <a href="https://status.example.org/page?a=1&amp;b=2" rel="noopener noreferrer nofollow">'
        "https://status.example.org/page?a=1&amp;b=2</a>. Or "
        '<a href="http://e.org/p" rel="noopener noreferrer nofollow">the plan</a>.'
    )


@pytest.mark.parametrize(
    "text",
    [
        "[click me](javascript:alert(1))",
        "javascript:alert(1)",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](JaVaScRiPt:alert(1))",
        "[x](//evil.example/)",
        "[x](https://)",
    ],
)
def test_other_schemes_stay_text(text: str) -> None:
    html = render_safe(text)
    assert "<a" not in html and "<script" not in html


@pytest.mark.parametrize(
    "text",
    [
        '[x](https://e.org/" onmouseover="alert(1))',
        "[x](https://e.org/' onmouseover='alert(1))",
        'https://e.org/"><img src=x onerror=alert(1)>',
        "https://e.org/`onfocus=alert(1)",
        '[<img src=x onerror="alert(1)">](https://e.org/)',
    ],
)
def test_attributes_cannot_be_injected(text: str) -> None:
    html = render_safe(text)
    assert "<img" not in html
    assert 'onmouseover="' not in html and "onmouseover='" not in html
    for href in html.split('href="')[1:]:  # every href ends at its own quote, before any escaped text
        address = href.split('"', 1)[0]
        assert address.startswith("https://e.org/") and not set(address) & set("<>'` ")


def test_an_announcement_has_words_and_a_limit() -> None:
    assert check_text("  Down on Friday.\n") == "Down on Friday."
    with pytest.raises(BadRequest, match="empty"):
        check_text("   ")
    with pytest.raises(BadRequest, match=f"1001 characters long; it may have at most {MAX_LENGTH}"):
        check_text("x" * 1001)
    with pytest.raises(BadRequest, match="text must be a string"):
        check_text(["a list"])


def test_end_times_are_read_in_iso_8601() -> None:
    assert parse_end_time(None) is None and parse_end_time("") is None
    assert parse_end_time("2030-05-01T18:00:00Z") == dt.datetime(2030, 5, 1, 18, tzinfo=dt.UTC)
    assert parse_end_time("2030-05-01T20:00:00+02:00") == dt.datetime(2030, 5, 1, 18, tzinfo=dt.UTC)
    assert parse_end_time("2030-05-01T18:00") == dt.datetime(2030, 5, 1, 18, tzinfo=dt.UTC)  # no zone: UTC
    assert parse_end_time("2030-05-01T19:00", utc_offset_minutes=60) == dt.datetime(2030, 5, 1, 18, tzinfo=dt.UTC)
    with pytest.raises(BadRequest, match="is not a time"):
        parse_end_time("next Friday")
    with pytest.raises(BadRequest, match="ISO 8601"):
        parse_end_time(1234)


def test_an_end_time_past_what_python_can_hold_is_a_plain_error() -> None:
    from hub.announcements import parse_end_time
    from hub.errors import BadRequest

    with pytest.raises(BadRequest, match="before the year 9999"):
        parse_end_time("9999-12-31T23:59:59-05:00")
