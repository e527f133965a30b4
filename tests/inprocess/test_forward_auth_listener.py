"""The lean forward-auth listener (hub/forward_auth_listener.py) gives the answers the hub's own port gives, and
holds up against clients that are not Traefik: pipelining, odd methods and paths, garbage, oversized heads."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from hub.config import ConfigError
from hub.forward_auth_listener import MAX_HEAD_BYTES, ForwardAuthListener, cookie_values, listening
from hub.keys import SERVERS
from hub.security import SESSION_COOKIE
from tests.inprocess.conftest import TokenMaker

Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
async def listener(app_client: TestClient) -> AsyncIterator[ForwardAuthListener]:
    lean = ForwardAuthListener(app_client.server.app)
    await lean.start("127.0.0.1", 0)
    yield lean
    await lean.close()


def question(path: str, uri: str, *, method: str = "GET", close: bool = False, **headers: str) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: hub",
        f"X-Forwarded-Uri: {uri}",
        "X-Forwarded-Method: GET",
        "X-Forwarded-Proto: http",
        "X-Forwarded-Host: hub.example.org",
        *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items()),
    ]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_answer(reader: asyncio.StreamReader, *, head_only: bool = False) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *header_lines = head.decode().rstrip("\r\n").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    length = 0 if head_only else int(headers["Content-Length"])
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return int(status_line.split(" ", 2)[1]), headers, body


async def ask_lean(listener: ForwardAuthListener, *questions: bytes) -> list[Answer]:
    """Send all questions at once (pipelined) on one connection and read the answers in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        writer.write(b"".join(questions))
        return [await read_answer(reader) for _ in questions]
    finally:
        writer.close()


async def ask_aiohttp(client: TestClient, path: str, uri: str, **headers: str) -> Answer:
    forwarded = {
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "hub.example.org",
        **{name.replace("_", "-"): value for name, value in headers.items()},
    }
    client.session.cookie_jar.clear()
    response = await client.get(path, headers=forwarded, allow_redirects=False)
    return response.status, dict(response.headers), await response.read()


async def test_the_lean_listener_answers_as_the_hub_port_does(
    app_client: TestClient, listener: ForwardAuthListener, tokens_of: TokenMaker
) -> None:
    alice, bob = await tokens_of("alice"), await tokens_of("bob")
    started = await app_client.post(
        "/hub/api/users/alice/server", json={"image": "lab"}, headers={"Authorization": f"token {alice}"}
    )
    assert started.status == 201
    secret = app_client.server.app[SERVERS].route_secret("alice")
    cases: dict[str, tuple[str, str, dict[str, str]]] = {
        "owner": ("/hub/forward-auth/alice", "/user/alice/api/status", {"Authorization": f"token {alice}"}),
        "owner, other cookies kept": (
            "/hub/forward-auth/alice",
            "/user/alice/lab",
            {"Authorization": f"token {alice}", "Cookie": f"{SESSION_COOKIE}=junk; _xsrf=abc; theme=dark"},
        ),
        "another user": ("/hub/forward-auth/alice", "/user/alice/api/status", {"Authorization": f"token {bob}"}),
        "escape by dots": ("/hub/forward-auth/alice", "/user/alice/../bob/api", {"Authorization": f"token {alice}"}),
        "nobody, a page": ("/hub/forward-auth/alice", "/user/alice/lab?x=1", {}),
        "unknown token": ("/hub/forward-auth-ws/alice", "/user/alice/api/kernels", {"Authorization": "token nope"}),
        "a server not running": ("/hub/forward-auth/bob", "/user/bob/api/status", {"Authorization": f"token {bob}"}),
        "a token write from another origin": (
            "/hub/forward-auth/alice",
            "/user/alice/api/contents/x",
            {"Authorization": f"token {alice}", "X-Forwarded-Method": "POST", "Origin": "https://evil.example"},
        ),
        "in German": (
            "/hub/forward-auth/alice",
            "/user/alice/",
            {"Authorization": "token nope", "Accept-Language": "de"},
        ),
    }
    answers: dict[str, tuple[Answer, Answer]] = {}
    for name, (path, uri, headers) in cases.items():
        lean = (await ask_lean(listener, question(path, uri, **headers)))[0]
        answers[name] = (lean, await ask_aiohttp(app_client, path, uri, **headers))
    statuses = {name: lean[0] for name, (lean, _) in answers.items()}
    assert statuses == {
        "owner": 200,
        "owner, other cookies kept": 200,
        "another user": 403,
        "escape by dots": 403,
        "nobody, a page": 302,
        "unknown token": 401,
        "a server not running": 503,
        "a token write from another origin": 200,  # tokens are not ambient: only cookies need the Origin check
        "in German": 401,
    }
    for name, (lean, through_aiohttp) in answers.items():
        assert lean[0] == through_aiohttp[0], name
        assert lean[2] == through_aiohttp[2], name
        for header in ("Authorization", "Cookie", "Location", "Content-Type"):
            assert lean[1].get(header) == through_aiohttp[1].get(header), (name, header)
    assert answers["owner"][0][1]["Authorization"] == f"token {secret}"
    assert answers["another user"][0][1]["X-Content-Type-Options"] == "nosniff"  # a refusal reaches the browser
    assert answers["owner, other cookies kept"][0][1]["Cookie"] == "_xsrf=abc; theme=dark"
    assert answers["nobody, a page"][0][1]["Location"].startswith("http://hub.example.org/hub/login?next=")
    english, german = answers["unknown token"][0][2].decode(), answers["in German"][0][2].decode()
    assert english.startswith("Log in to the hub first") and german.strip() and german != english


async def test_pipelined_questions_are_answered_in_order(
    app_client: TestClient, listener: ForwardAuthListener, tokens_of: TokenMaker
) -> None:
    """An unknown token waits for a look in the database; the question behind it must not overtake it."""
    alice = await tokens_of("alice")
    await app_client.post(
        "/hub/api/users/alice/server", json={"image": "lab"}, headers={"Authorization": f"token {alice}"}
    )
    answers = await ask_lean(
        listener,
        question("/hub/forward-auth/alice", "/user/alice/", Authorization="token unknown-one"),
        question("/hub/forward-auth/alice", "/user/alice/", Authorization=f"token {alice}"),
        question("/hub/forward-auth/alice", "/user/alice/", Authorization="token unknown-two"),
        question("/hub/forward-auth/alice", "/user/alice/api", Authorization=f"token {alice}"),
    )
    assert [status for status, _, _ in answers] == [401, 200, 401, 200]


@pytest.mark.parametrize(
    "garbage",
    [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /hub/forward-auth/alice HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ],
    ids=["not http", "an upgrade"],
)
async def test_a_bad_question_behind_a_waiting_one_is_refused_after_its_answer(
    listener: ForwardAuthListener, garbage: bytes
) -> None:
    """The first question waits for a look in the database; the garbage behind it gets its 400 only after that
    answer, and then the connection closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        writer.write(question("/hub/forward-auth/alice", "/user/alice/", Authorization="token unknown-one") + garbage)
        assert [(await read_answer(reader))[0] for _ in range(2)] == [401, 400]
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_other_methods_paths_and_head(listener: ForwardAuthListener) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        writer.write(question("/hub/forward-auth/alice", "/user/alice/", method="POST"))
        status, headers, _ = await read_answer(reader)
        assert (status, headers["Allow"]) == (405, "GET, HEAD")
        for path in ("/hub/login", "/hub/forward-auth/", "/hub/forward-auth/a/b/c", "/hub/forward-auth/a%2Fb"):
            writer.write(question(path, "/user/a/"))
            assert (await read_answer(reader))[0] == 404, path
        writer.write(question("/hub/forward-auth/alice", "/user/alice/", method="HEAD"))
        status, headers, body = await read_answer(reader, head_only=True)
        assert status == 302 and int(headers["Content-Length"]) > 0
        writer.write(question("/hub/forward-auth/alice", "/user/alice/", close=True))
        assert (await read_answer(reader))[0] == 302
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after the answer, as asked
    finally:
        writer.close()


@pytest.mark.parametrize(
    "garbage, status",
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET /hub/forward-auth/alice HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 400),
        (b"GET /hub/forward-auth/alice HTTP/1.1\r\nX-Big: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", 431),
    ],
    ids=["not http", "an upgrade", "oversized"],
)
async def test_garbage_is_refused_and_the_connection_closed(
    listener: ForwardAuthListener, garbage: bytes, status: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        writer.write(garbage)
        assert (await read_answer(reader))[0] == status
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()
    assert await ask_lean(listener, question("/hub/forward-auth/alice", "/user/alice/"))  # still serving


@pytest.mark.parametrize(
    "header",
    [
        "",
        f"{SESSION_COOKIE}=abc",
        f"{SESSION_COOKIE}=abc==; hub-lang=de",
        f'a=1; {SESSION_COOKIE}="quoted"; b=2',
        f"{SESSION_COOKIE}=first; {SESSION_COOKIE}=second",
        "  spaced = out ;;; novalue; =nokey",
        f'x="a; {SESSION_COOKIE}=S; b"',  # one cookie x: no session cookie in it
        'x="oct\\012al"; y="q\\"uote"',
        "bad name=1; ok=2",
        "a=b=c; d = e f ",
        f'{SESSION_COOKIE}="unterminated; hub-lang=fr',
        "é=1; hub-lang=de",
        'k="v"x; z=1',
        "[x]=1; {y}=2; a,b=3; v=[1]",
    ],
)
def test_cookie_values_read_as_aiohttp_reads_them(header: str) -> None:
    request = make_mocked_request("GET", "/", headers={"Cookie": header} if header else {})
    assert cookie_values(header) == dict(request.cookies)


async def test_slow_and_idle_connections_are_closed(
    listener: ForwardAuthListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that sends half a question and waits, or keeps a connection open doing nothing, loses it."""
    import hub.forward_auth_listener as lean

    monkeypatch.setattr(lean, "HEAD_SECONDS", 0.3)
    monkeypatch.setattr(lean, "IDLE_SECONDS", 0.6)
    monkeypatch.setattr(lean, "SWEEP_SECONDS", 0.1)
    await listener.close()
    await listener.start("127.0.0.1", 0)  # the sweeper with the short period
    slow_reader, slow = await asyncio.open_connection("127.0.0.1", listener.port)
    idle_reader, idle = await asyncio.open_connection("127.0.0.1", listener.port)
    busy_reader, busy = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        slow.write(b"GET /hub/forward-auth/alice HTTP/1.1\r\nHost: hub\r\n")
        idle.write(question("/hub/forward-auth/alice", "/user/alice/"))
        assert (await read_answer(idle_reader))[0] == 302
        assert await asyncio.wait_for(slow_reader.read(), 2) == b""  # closed after HEAD_SECONDS
        for _ in range(4):  # a connection in use stays open past IDLE_SECONDS
            busy.write(question("/hub/forward-auth/alice", "/user/alice/"))
            assert (await read_answer(busy_reader))[0] == 302
            await asyncio.sleep(0.25)
        assert await asyncio.wait_for(idle_reader.read(), 2) == b""  # closed after IDLE_SECONDS
        assert not busy_reader.at_eof()
    finally:
        for writer in (slow, idle, busy):
            writer.close()


async def test_a_port_in_use_stops_the_hub_with_words(app_client: TestClient) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"hub.forward_auth_port: cannot listen on 127.0.0.1:{port}"):
            await anext(listening("127.0.0.1", port)(app_client.server.app))
