"""The cheap readiness look: a bare TCP connect tells a listening port from a closed one."""

from __future__ import annotations

import asyncio
import socket

from hub.port_probe import host_and_port, port_accepts


def test_host_and_port_of_a_server_address() -> None:
    assert host_and_port("http://172.18.0.5:8888") == ("172.18.0.5", 8888)
    assert host_and_port("http://hub-alice:8080") == ("hub-alice", 8080)
    assert host_and_port("http://[fd00::5]:8888") == ("fd00::5", 8888)


def test_a_listening_port_accepts_and_a_closed_one_does_not() -> None:
    async def scenario() -> None:
        server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            assert await port_accepts("127.0.0.1", port, timeout=1.0) is True
            assert await port_accepts("localhost", port, timeout=1.0) is True  # a name is resolved
        with socket.socket() as spare:  # a port nobody listens on
            spare.bind(("127.0.0.1", 0))
            closed = spare.getsockname()[1]
        assert await port_accepts("127.0.0.1", closed, timeout=1.0) is False
        assert await port_accepts("no-such-host.invalid", closed, timeout=1.0) is False

    asyncio.run(scenario())


def test_a_port_that_does_not_answer_in_time_counts_as_closed() -> None:
    async def scenario() -> None:
        with socket.socket() as busy:  # a listener that never accepts: once its queue is full, connects hang
            busy.bind(("127.0.0.1", 0))
            busy.listen(0)
            port = busy.getsockname()[1]
            waiting = []
            for _ in range(3):
                pending = socket.socket()
                pending.setblocking(False)
                pending.connect_ex(("127.0.0.1", port))
                waiting.append(pending)
            try:
                loop = asyncio.get_running_loop()
                began = loop.time()
                assert await port_accepts("127.0.0.1", port, timeout=0.3) is False
                assert 0.25 <= loop.time() - began < 2.0
            finally:
                for pending in waiting:
                    pending.close()

    asyncio.run(scenario())
