"""The Redis store when Redis restarts or stays away, and its password kept out of sight.

Each test gets its own password-protected redis-server, which it stops and restarts on
the same port. The waits here are real: they are how long a server is down, not windows
of Chaperone's clock.
"""

from __future__ import annotations

import io
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from chaperone import Settings
from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone._logging import configure_logging
from chaperone._secrets import MASK, MASKER
from chaperone.store import open_store
from chaperone.store._redis import RedisStore
from chaperone.supervision import Supervisor
from chaperone.testing.redis_server import RedisServer, redis_server_or_skip
from helpers.cli import Invocation, clean_environ, run_many

PASSWORD = "s3cret-Pa55"  # noqa: S105  # a test server's, on 127.0.0.1 only
"""The server's password; no test output may show it."""

DEFAULT_BUDGET_S = 0.1 + 0.2 + 0.4 + 0.8 + 1.0
"""How long the default five retries wait in all before giving up."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, requiring PASSWORD."""
    binary = redis_server_or_skip()
    folder = tmp_path / "redis"
    folder.mkdir()
    with RedisServer(binary, folder, password=PASSWORD) as started:
        yield started


def _leaks(*texts: str) -> list[str]:
    """The texts that show the password."""
    return [text for text in texts if PASSWORD in text]


class TestReconnect:
    def test_restart_between_operations(self, server: RedisServer) -> None:
        """After Redis restarts (empty, same port), the next operations of every kind
        reconnect and succeed; what the old server held is gone."""
        store = RedisStore(server.url(), ManualClock())
        try:
            store.set("before", "v")
            store.push("q", "r")
            server.restart()
            store.set("after", "v")  # a transaction
            assert store.get("after") == "v"  # a single command
            assert store.set_if_absent("won", "v", ttl=60)  # a script, reloaded
            assert store.keys("") == ["after", "won"]
            assert store.get("before") is None
            assert store.pop("q", 5) == []
        finally:
            store.close()

    def test_every_pooled_connection_recovers(self, server: RedisServer) -> None:
        """Threads that held several pooled connections before a restart all carry on."""
        store = RedisStore(server.url(), ManualClock())
        errors: list[BaseException] = []

        def count(times: int) -> None:
            try:
                for _ in range(times):
                    store.incr("hits")
            except BaseException as exc:
                errors.append(exc)

        try:
            for round_ in range(2):
                threads = [threading.Thread(target=count, args=(50,)) for _ in range(6)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(timeout=30)
                assert not errors, errors
                assert store.get("hits") == "300"
                if round_ == 0:
                    server.restart()
        finally:
            store.close()

    def test_operation_waits_for_redis_to_come_back(self, server: RedisServer) -> None:
        """An operation sent while Redis is down succeeds once it is back within the
        retry budget (eight retries here: about 5.5 s)."""
        store = RedisStore(server.url(retries="8"), ManualClock())
        try:
            store.set("k", "old")
            server.stop()
            restarter = threading.Timer(0.4, server.start)
            started = time.monotonic()
            restarter.start()
            try:
                store.set("k", "new")
            finally:
                restarter.join(timeout=30)
            elapsed = time.monotonic() - started
            assert server.running
            assert store.get("k") == "new"
            assert 0.3 < elapsed < 5.5, elapsed
        finally:
            store.close()

    def test_down_longer_than_the_budget(self, server: RedisServer) -> None:
        """With Redis away for good, an operation raises StoreError after the default
        retries (about 2.5 s), naming the operation and the server but not the password;
        once Redis is back the same store works again."""
        store = open_store(server.url(), ManualClock())
        try:
            server.stop()
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                store.incr("hits")
            elapsed = time.monotonic() - started
            assert DEFAULT_BUDGET_S * 0.9 < elapsed < DEFAULT_BUDGET_S + 5, elapsed
            message = str(caught.value)
            assert f"the Redis store 127.0.0.1:{server.port}/0 could not add to a counter" in (
                message
            )
            assert "Connection refused" in message
            shown = "".join(traceback.format_exception(caught.value))
            assert not _leaks(message, repr(caught.value), shown, repr(store))
            server.start()
            assert store.incr("hits") == 1
        finally:
            store.close()


_STALL = """
local start = redis.call('TIME')
while true do
    local now = redis.call('TIME')
    if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[1]) then break end
end
return 1
"""
"""Keep Redis busy for ARGV[1] microseconds: commands sent meanwhile wait in their sockets."""


class TestLostReplies:
    def test_calls_whose_replies_came_too_late_act_once(self, server: RedisServer) -> None:
        """While Redis stalls, a pop, a set_if_absent and an incr time out and redis-py
        sends them again; when Redis wakes it runs each twice, and the second run answers
        what the first did: no record is lost, the winner wins, the counter counts once."""
        store = RedisStore(server.url(timeout="0.3", retries="8"), ManualClock())
        stalling = server.client()
        answers: dict[str, object] = {}
        calls = {
            "pop": lambda: store.pop("q", 2),
            "set_if_absent": lambda: store.set_if_absent("lock", "me", ttl=60),
            "incr": lambda: store.incr("hits"),
        }
        try:
            for index in range(6):
                store.push("q", f"r{index}")
            store.pop("elsewhere", 1)  # Redis caches each script now, so a resend runs it
            store.set_if_absent("elsewhere", "v", ttl=60)
            store.incr("elsewhere too")
            pool = store._client.connection_pool  # one open connection per call, so that
            held = [pool.get_connection() for _ in calls]  # each is sent, not stuck connecting
            for connection in held:
                pool.release(connection)
            staller = threading.Thread(target=stalling.eval, args=(_STALL, 0, 1_500_000))
            staller.start()
            time.sleep(0.2)  # let the stall begin: the calls are then sent into it
            workers = [
                threading.Thread(target=lambda n=name, c=call: answers.update({n: c()}))
                for name, call in calls.items()
            ]
            started = time.monotonic()
            for worker in workers:
                worker.start()
            for worker in [*workers, staller]:
                worker.join(timeout=30)
            waited = time.monotonic() - started
            rest = store.pop("q", 10)
            counted = store.get("hits")
        finally:
            stalling.close()
            store.close()
        assert waited > 0.9, "the calls were answered before the stall ended"
        assert answers == {"pop": ["r0", "r1"], "set_if_absent": True, "incr": 1}
        assert rest == ["r2", "r3", "r4", "r5"]
        assert counted == "1"


class TestPassword:
    def test_store_works_with_the_password(self, server: RedisServer) -> None:
        """The password from the URL authenticates, and the store never shows it."""
        store = open_store(server.url(prefix="pw:"), ManualClock())
        try:
            store.set("k", "v")
            assert store.get("k") == "v"
            assert store.url == f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0?prefix=pw:"
            assert not _leaks(repr(store), str(store))
            masked = f"redis://{MASK}@127.0.0.1:{server.port}/0?prefix=pw:"
            assert MASKER.mask(f"the URL is {store.url}") == f"the URL is {masked}"
            assert MASKER.mask(f"password={PASSWORD}") == f"password={MASK}"
        finally:
            store.close()

    def test_wrong_password(self, server: RedisServer) -> None:
        """A wrong password raises StoreError, showing neither password."""
        wrong = "Wr0ngPassw0rd"
        store = open_store(f"redis://:{wrong}@127.0.0.1:{server.port}/0?retries=0", ManualClock())
        try:
            with pytest.raises(StoreError, match="could not read a key") as caught:
                store.get("k")
            shown = "".join(traceback.format_exception(caught.value))
            assert not _leaks(shown)
            assert wrong not in shown
        finally:
            store.close()

    def test_logs_never_show_the_password(self, server: RedisServer) -> None:
        """A supervisor whose Redis is away logs the store's error, and a log line that
        carries the URL shows the password masked."""
        store = open_store(server.url(retries="0"), ManualClock())
        previous = structlog.get_config() if structlog.is_configured() else None
        stream = io.StringIO()
        configure_logging(Settings(log_format="json", log_level="debug"), stream=stream)
        try:
            server.stop()
            supervisor = Supervisor(store, ManualClock())
            assert supervisor.safely("read a job", lambda: store.get("job")) is None
            structlog.get_logger("test").warning("store in use", url=store.url)
        finally:
            store.close()
            if previous is None:
                structlog.reset_defaults()
            else:
                structlog.configure(**previous)
        logged = stream.getvalue()
        assert "supervision store unavailable" in logged
        assert f"127.0.0.1:{server.port}/0 could not read a key" in logged
        assert f"redis://{MASK}@127.0.0.1" in logged
        assert not _leaks(logged)

    def test_cli_never_shows_the_password(self, server: RedisServer, tmp_path: Path) -> None:
        """`chaperone config show`, `config check` and `history` on the Redis store work
        and print the store's URL with the password masked."""
        env = clean_environ(
            tmp_path, CHAPERONE_STORE=server.url(prefix="cli:"), CHAPERONE_ALERT_CHANNELS="log"
        )
        results = run_many(
            {
                name: Invocation(args, tmp_path, env)
                for name, args in {
                    "show": ("config", "show", "--json"),
                    "check": ("config", "check"),
                    "history": ("history", "--json"),
                }.items()
            }
        )
        for result in results.values():
            assert result.returncode == 0, str(result)
            assert not _leaks(result.stdout, result.stderr), str(result)
        masked = f"redis://{MASK}@127.0.0.1:{server.port}/0?prefix=cli:"
        assert masked in results["show"].stdout
        assert masked in results["check"].stdout
        assert results["history"].json() == []
