"""``chaperone serve`` against hostile clients, run as a person runs it (a subprocess on
127.0.0.1, its timeouts set small): idle and slow connections are closed, malformed
requests get 400, 414 or 431, a client that leaves mid-response harms nothing, and no
traceback reaches what the command printed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers.cli import clean_environ
from helpers.serve import Served, serving

REQUEST_TIMEOUT = 2.0
IDLE_TIMEOUT = 1.0
IDLE_CONNECTIONS = 300
CLOSE_WAIT = 15.0
"""Longest a test waits for the server to close what it should (the timeouts are 1-2 s)."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """``chaperone serve`` with 1 s timeouts and debug logging; checked after the test
    to have stopped cleanly, without a traceback.
    """
    env = clean_environ(
        tmp_path,
        CHAPERONE_HEALTH_REQUIRE_MONITOR="false",
        CHAPERONE_SERVE_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
        CHAPERONE_SERVE_IDLE_TIMEOUT=str(IDLE_TIMEOUT),
        CHAPERONE_LOG_LEVEL="debug",
    )
    with serving(env, tmp_path) as running:
        yield running
        assert running.stop() == 0
    printed = running.stdout + running.stderr
    assert "Traceback" not in printed, printed[-4000:]
    assert running.stdout.splitlines()[-1] == "stopped"


def address(served: Served) -> tuple[str, int]:
    """The server's host and port."""
    url = httpx.URL(served.url)
    assert url.port is not None
    return url.host, url.port


def exchange(served: Served, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection and read the whole answer (until closed)."""
    with socket.create_connection(address(served), timeout=CLOSE_WAIT) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    return int(answer.split(b" ", 2)[1])


def still_open(sock: socket.socket) -> bool:
    """Whether ``sock`` is open, with nothing to read (checked without waiting)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)


def closed_within(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Whether the server closed ``sock`` within ``timeout`` seconds, and what it sent."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        return True, received
    return True, received


class TestSlowClients:
    """Connections that send nothing, or not enough, are closed after the timeout."""

    def test_idle_connections_do_not_block_health_and_are_closed(self, served: Served) -> None:
        """300 connections that send nothing: /health answers meanwhile, quickly; every
        one of them is closed by the server within the timeout's reach.
        """
        idle = [
            socket.create_connection(address(served), timeout=5) for _ in range(IDLE_CONNECTIONS)
        ]
        try:
            started = time.monotonic()
            response = httpx.get(f"{served.url}/health", timeout=10)
            took = time.monotonic() - started
            held = sum(still_open(sock) for sock in idle)
            deadline = time.monotonic() + CLOSE_WAIT
            not_closed = 0
            for sock in idle:
                closed, _ = closed_within(sock, max(0.1, deadline - time.monotonic()))
                not_closed += not closed
        finally:
            for sock in idle:
                sock.close()
        assert response.status_code == 200
        assert took < REQUEST_TIMEOUT, took
        assert held == IDLE_CONNECTIONS  # /health answered while all of them were held
        assert not_closed == 0

    def test_partial_request_line_gets_408_and_is_closed(self, served: Served) -> None:
        """A request line sent in part and never finished (slowloris): 408, then closed."""
        with socket.create_connection(address(served), timeout=5) as sock:
            sock.sendall(b"GET /health HT")
            started = time.monotonic()
            closed, received = closed_within(sock, CLOSE_WAIT)
            took = time.monotonic() - started
        assert closed
        assert status_of(received) == 408
        assert took >= REQUEST_TIMEOUT * 0.8, took

    def test_headers_trickled_past_the_timeout_are_cut(self, served: Served) -> None:
        """A head whose headers keep coming, one every 0.3 s, is cut at the request
        timeout, not kept alive by the trickle.
        """
        with socket.create_connection(address(served), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            closed = False
            try:
                for index in range(int(CLOSE_WAIT / 0.3)):
                    sock.sendall(f"X-Slow-{index}: 1\r\n".encode())
                    time.sleep(0.3)  # the trickle itself is what is under test
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            took = time.monotonic() - started
            if not closed:
                closed, _ = closed_within(sock, 1)
        assert closed
        assert took < REQUEST_TIMEOUT + 3, took

    def test_idle_keep_alive_connection_is_closed(self, served: Served) -> None:
        """After a complete exchange, a keep-alive connection left idle is closed after
        the idle timeout.
        """
        with socket.create_connection(address(served), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            first = sock.recv(65536)
            closed, _ = closed_within(sock, CLOSE_WAIT)
        assert status_of(first) == 200
        assert closed


class TestMalformedRequests:
    """Each malformed request gets its status, and the server goes on."""

    def test_garbage_request_line_is_400(self, served: Served) -> None:
        """A request line that is not HTTP: 400."""
        assert status_of(exchange(served, b"GARBAGE\r\n\r\n")) == 400
        assert status_of(exchange(served, b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n")) == 400

    def test_oversize_path_is_414(self, served: Served) -> None:
        """A 70 KB path: 414, whether it comes in one piece or in several."""
        path = b"/" + b"a" * 70_000
        assert status_of(exchange(served, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")) == 414
        assert status_of(exchange(served, b"GET " + path)) == 414

    def test_huge_header_is_431(self, served: Served) -> None:
        """A 20 KB header: 431; many headers adding up past the limit: 431."""
        big = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n"
        assert status_of(exchange(served, big)) == 431
        many = b"".join(b"X-H%d: %s\r\n" % (index, b"v" * 100) for index in range(300))
        assert (
            status_of(exchange(served, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"))
            == 431
        )

    def test_it_still_answers_after_them(self, served: Served) -> None:
        """After malformed requests and clients that leave mid-response, /health is 200."""
        exchange(served, b"GARBAGE\r\n\r\n")
        for _ in range(20):
            with socket.create_connection(address(served), timeout=5) as sock:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
        assert httpx.get(f"{served.url}/health", timeout=10).status_code == 200
