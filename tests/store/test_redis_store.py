"""The Redis store beyond the shared contract: its URL, how it lays keys out on the server,
Redis's own expiry as a backstop, the key set, and a model test against MemoryStore.

The contract suites (test_store_*.py) run on Redis through the ``redis`` backend of
conftest.py; the server is a real redis-server (see chaperone.testing.redis_server).
"""

from __future__ import annotations

import itertools
import math
import ssl
import sys
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone._exceptions import ConfigError, StoreError
from chaperone._secrets import MASK, MASKER
from chaperone.store import MemoryStore, Store, open_store
from chaperone.store._redis import (
    DEFAULT_PREFIX,
    RedisStore,
    RedisUrlError,
    _lex_range,
    parse_redis_url,
)
from chaperone.testing.redis_server import RedisServer, free_port

OpenRedis = Callable[..., RedisStore]

_prefixes = (f"unit{number}:" for number in itertools.count())


@pytest.fixture
def open_redis(redis_server: RedisServer, clock: ManualClock) -> Iterator[OpenRedis]:
    """Open Redis stores on the session's server, each under a fresh prefix unless told;
    closed, and their keys deleted, after the test."""
    opened: list[RedisStore] = []

    def open_one(prefix: str | None = None, **options: str) -> RedisStore:
        store = RedisStore(redis_server.url(prefix=prefix or next(_prefixes), **options), clock)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()
        redis_server.clear(store.prefix)


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client of the session's server, to look behind the store's back."""
    client = redis_server.client()
    yield client
    client.close()


class TestUrl:
    def test_defaults(self) -> None:
        """A bare redis:// means localhost:6379, database 0, prefix chaperone:, no TLS."""
        options = parse_redis_url("redis://")
        assert (options.host, options.port, options.db) == ("localhost", 6379, 0)
        assert (options.prefix, options.tls, options.retries) == (DEFAULT_PREFIX, False, 5)
        assert options.prefix == "chaperone:"
        assert (options.username, options.password) == (None, None)

    def test_every_part(self) -> None:
        """Credentials (percent-decoded), host, port, database and every option are read."""
        options = parse_redis_url(
            "rediss://ops:p%40ss%2Fw0rd@cache.internal:6380/3?prefix=myapp:&timeout=1.5"
            "&connect_timeout=0.5&retries=2&ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=optional"
        )
        assert attrs.asdict(options) == {
            "host": "cache.internal",
            "port": 6380,
            "db": 3,
            "username": "ops",
            "password": "p@ss/w0rd",
            "tls": True,
            "prefix": "myapp:",
            "timeout": 1.5,
            "connect_timeout": 0.5,
            "retries": 2,
            "ssl_ca_certs": "/etc/ca.pem",
            "ssl_cert_reqs": "optional",
        }
        assert options.address == "cache.internal:6380/3"
        assert "p@ss" not in repr(options)

    def test_ipv6_host(self) -> None:
        """An IPv6 host keeps its brackets in the address used in messages."""
        assert parse_redis_url("redis://[::1]:7000/2").address == "[::1]:7000/2"

    def test_empty_prefix_is_allowed(self) -> None:
        """prefix= (empty) puts keys at the top of the database."""
        assert parse_redis_url("redis://h/0?prefix=").prefix == ""

    @pytest.mark.parametrize(
        ("url", "complaint"),
        [
            ("redis://:hunter2pw@h:port/0", "port must be a number"),
            ("redis://:hunter2pw@h:99999/0", "port must be a number"),
            ("redis://:hunter2pw@h:6379/zero", "path must be /DB"),
            ("redis://:hunter2pw@h:6379/0/1", "path must be /DB"),
            ("redis://:hunter2pw@h/0?password=hunter2pw", "unknown option 'password'"),
            ("redis://:hunter2pw@h/0?prefix=a&prefix=b", "given twice"),
            ("redis://:hunter2pw@h/0?ssl_ca_certs=/ca.pem", "needs rediss://"),
            ("redis://:hunter2pw@h/0?retries=-1", "retries must be"),
            ("redis://:hunter2pw@h/0?retries=21", "retries must be"),
            ("redis://:hunter2pw@h/0?timeout=0", "timeout must be a positive"),
            ("redis://:hunter2pw@h/0?connect_timeout=nan", "connect_timeout must be"),
            ("rediss://:hunter2pw@h/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
            ("http://:hunter2pw@h/0", "starts with redis://"),
        ],
    )
    def test_malformed(self, url: str, complaint: str) -> None:
        """A URL that cannot be used says what is wrong, and never quotes the password."""
        with pytest.raises(RedisUrlError, match=complaint) as caught:
            parse_redis_url(url)
        assert "hunter2pw" not in str(caught.value)

    def test_password_is_registered_as_a_secret(self) -> None:
        """Reading a URL teaches the masker its password, as written and decoded."""
        parse_redis_url("redis://:Xyzzy%21Plugh@h/0")
        text = MASKER.mask("auth with Xyzzy!Plugh or Xyzzy%21Plugh")
        assert "Xyzzy" not in text
        assert text.count(MASK) == 2


class TestOpenStore:
    def test_opens_without_connecting(self, clock: ManualClock) -> None:
        """open_store returns a RedisStore at once; the first operation finds Redis away."""
        port = free_port()
        store = open_store(f"redis://:pw4unit@127.0.0.1:{port}/0?retries=0", clock)
        try:
            assert isinstance(store, RedisStore)
            assert isinstance(store, Store)
            assert store.url == f"redis://:pw4unit@127.0.0.1:{port}/0?retries=0"
            with pytest.raises(StoreError, match=f"127.0.0.1:{port}/0 could not read a key"):
                store.get("k")
        finally:
            store.close()

    def test_malformed_url_is_a_config_error(self, clock: ManualClock) -> None:
        """A bad redis:// URL raises ConfigError naming the setting, the source and why."""
        with pytest.raises(ConfigError) as caught:
            open_store("rediss://:pw@h/0?nope=1", clock, key="CHAPERONE_STORE", source="env")
        (problem,) = caught.value.problems
        assert (problem.key, problem.source) == ("CHAPERONE_STORE", "env")
        assert problem.message.startswith("rediss:// URL: unknown option 'nope'")

    def test_missing_client_says_what_to_install(
        self, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without the redis package, redis:// raises ConfigError naming the extra."""
        monkeypatch.setitem(sys.modules, "redis", None)
        monkeypatch.delitem(sys.modules, "chaperone.store._redis")
        with pytest.raises(ConfigError, match=r"pip install 'chaperone-core\[redis\]'"):
            open_store("redis://localhost/0", clock)

    def test_client_settings(self, clock: ManualClock) -> None:
        """The pool gets the timeouts, RESP2, and retries with exponential backoff."""
        store = RedisStore("redis://u:pw@h:1/2?timeout=3&connect_timeout=0.25&retries=7", clock)
        try:
            kwargs = store._client.connection_pool.connection_kwargs
            assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("h", 1, 2)
            assert (kwargs["username"], kwargs["password"]) == ("u", "pw")
            assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (3.0, 0.25)
            assert kwargs["protocol"] == 2
            assert kwargs["retry"].get_retries() == 7
        finally:
            store.close()

    @pytest.mark.parametrize(
        ("query", "mode", "check_hostname"),
        [
            ("", ssl.CERT_REQUIRED, True),
            ("?ssl_cert_reqs=optional", ssl.CERT_OPTIONAL, False),
            ("?ssl_cert_reqs=none&ssl_ca_certs=/etc/ca.pem", ssl.CERT_NONE, False),
        ],
    )
    def test_rediss_uses_tls(
        self, clock: ManualClock, query: str, mode: ssl.VerifyMode, check_hostname: bool
    ) -> None:
        """rediss:// connects over TLS, verifying the server as the options say."""
        store = RedisStore(f"rediss://h:6380/0{query}", clock)
        try:
            pool = store._client.connection_pool
            assert pool.connection_class is redis.SSLConnection
            assert pool.connection_kwargs["ssl_cert_reqs"] == mode
            assert pool.connection_kwargs["ssl_check_hostname"] is check_hostname
        finally:
            store.close()

    def test_plain_redis_has_no_tls(self, clock: ManualClock) -> None:
        """redis:// connects in the clear."""
        store = RedisStore("redis://h:6379/0", clock)
        try:
            assert store._client.connection_pool.connection_class is redis.Connection
        finally:
            store.close()


class TestLayout:
    def test_every_kind_of_data_lives_under_the_prefix(
        self, open_redis: OpenRedis, raw: redis.Redis
    ) -> None:
        """Keys, the key set, streams, deadline indexes and queues all start with the prefix."""
        store = open_redis("layoutA:")
        store.set("a", "1")
        store.append("a", "r", max_len=5)
        store.schedule("a", "m", 1.0)
        store.push("a", "r")
        names = {name.decode() for name in raw.scan_iter(match="layoutA:*")}
        receipts = {name for name in names if name.startswith("layoutA:r:")}
        assert len(receipts) == 2  # of append and push
        assert names - receipts == {f"layoutA:{n}" for n in ["k:a", "keys", "s:a", "d:a", "q:a"]}
        assert raw.hgetall("layoutA:k:a") == {b"v": b"1", b"x": b""}

    def test_two_prefixes_never_meet(self, open_redis: OpenRedis) -> None:
        """Stores under different prefixes on one server see nothing of each other."""
        first, second = open_redis("apps1:"), open_redis("apps2:")
        first.set("k", "first")
        first.push("q", "r")
        assert second.get("k") is None
        assert second.keys("") == []
        assert second.delete_prefix("") == 0
        assert second.pop("q", 5) == []
        assert first.get("k") == "first"
        assert first.pop("q", 5) == ["r"]

    def test_two_stores_on_one_prefix_share_everything(self, open_redis: OpenRedis) -> None:
        """Two stores with the same prefix share keys, ownership, streams and queues."""
        first, second = open_redis("shared1:"), open_redis("shared1:")
        assert first.set_if_absent("k", "first", ttl=10)
        assert not second.set_if_absent("k", "second", ttl=10)
        assert second.get("k") == "first"
        second.append("s", "r", max_len=5)
        assert first.tail("s", 5) == ["r"]
        first.push("q", "r")
        assert second.pop("q", 5) == ["r"]
        assert second.delete("k")
        assert first.get("k") is None

    def test_a_redis_failure_is_a_store_error(
        self, open_redis: OpenRedis, raw: redis.Redis
    ) -> None:
        """A Redis error names the operation and the server, wrapped as StoreError."""
        store = open_redis("wrongtype:")
        raw.set("wrongtype:k:k", "a plain string, not the store's hash")
        with pytest.raises(StoreError, match="could not read a key: ResponseError") as caught:
            store.get("k")
        assert store.address in str(caught.value)
        assert isinstance(caught.value.__cause__, redis.RedisError)

    def test_scripts_reload_after_the_cache_is_flushed(
        self, open_redis: OpenRedis, raw: redis.Redis
    ) -> None:
        """After SCRIPT FLUSH (or a restart) the Lua scripts are loaded again by themselves."""
        store = open_redis()
        assert store.set_if_absent("k", "v", ttl=10)
        raw.script_flush()
        assert not store.set_if_absent("k", "w", ttl=10)
        assert store.incr("n") == 1
        assert store.keys("") == ["k", "n"]

    def test_a_resent_win_still_wins(self, open_redis: OpenRedis, clock: ManualClock) -> None:
        """set_if_absent sent twice with one owner token (a retry after a lost reply)
        answers True both times; another caller's token still loses."""
        store = open_redis()
        now = repr(clock.timestamp())
        args = [now, "k", "v", repr(clock.timestamp() + 10), "70000", "token-1"]
        keys = [store._key("k"), store._key_set]
        assert store._set_if_absent(keys=keys, args=args) == 1
        assert store._set_if_absent(keys=keys, args=args) == 1
        assert store._set_if_absent(keys=keys, args=[*args[:5], "token-2"]) == 0
        assert store.get("k") == "v"


class TestResent:
    """redis-py sends a command again when its reply is lost; a call must act once."""

    @pytest.fixture
    def twice(
        self, open_redis: OpenRedis, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[RedisStore, Callable[[Callable[[], Any]], list[Any]]]:
        """A store, and a way to make one call of it twice with one receipt, as
        redis-py's resends of one call carry."""
        store = open_redis()
        calls = itertools.count()

        def call_twice(call: Callable[[], Any]) -> list[Any]:
            receipt = store._name("r", f"call-{next(calls)}")
            monkeypatch.setattr(store, "_receipt", lambda: receipt)
            try:
                return [call(), call()]
            finally:
                monkeypatch.undo()

        return store, call_twice

    def test_a_resent_pop_answers_the_same_records(self, twice: Any) -> None:
        """Popping again with the same receipt returns the same records and takes no more."""
        store, call_twice = twice
        for index in range(5):
            store.push("q", f"r{index}")
        assert call_twice(lambda: store.pop("q", 2)) == [["r0", "r1"], ["r0", "r1"]]
        assert store.pop("q", 10) == ["r2", "r3", "r4"]
        assert call_twice(lambda: store.pop("q", 2)) == [[], []]
        assert call_twice(lambda: store.pop("q", 1)) == [[], []]

    def test_a_resent_push_queues_once(self, twice: Any) -> None:
        """Pushing again with the same receipt adds nothing."""
        store, call_twice = twice
        call_twice(lambda: store.push("q", "r"))
        assert store.pop("q", 10) == ["r"]

    def test_a_resent_incr_counts_once(self, twice: Any) -> None:
        """Adding again with the same receipt answers the same total and adds nothing."""
        store, call_twice = twice
        assert call_twice(lambda: store.incr("n", 5)) == [5, 5]
        assert store.get("n") == "5"

    def test_a_resent_append_records_once(self, twice: Any) -> None:
        """Appending again with the same receipt adds nothing."""
        store, call_twice = twice
        call_twice(lambda: store.append("s", "r", max_len=5))
        assert store.tail("s", 5) == ["r"]

    def test_resent_deletes_report_what_went(self, twice: Any) -> None:
        """delete, delete_prefix and unschedule sent again still report what the first
        send removed."""
        store, call_twice = twice
        store.set("k", "v")
        store.schedule("i", "m", 1.0)
        store.set("p:1", "v")
        assert call_twice(lambda: store.delete("k")) == [True, True]
        assert call_twice(lambda: store.unschedule("i", "m")) == [True, True]
        assert call_twice(lambda: store.delete_prefix("p:")) == [1, 1]
        assert store.keys("") == []
        assert not store.delete("k")

    def test_distinct_calls_act_each(self, open_redis: OpenRedis) -> None:
        """Without a shared receipt, equal calls each act (receipts are per call)."""
        store = open_redis()
        store.push("q", "r")
        store.push("q", "r")
        assert store.incr("n") == 1
        assert store.incr("n") == 2
        assert store.pop("q", 10) == ["r", "r"]

    def test_receipts_expire(self, open_redis: OpenRedis, raw: redis.Redis) -> None:
        """A receipt is kept for minutes (longer than all retries take), then dropped."""
        store = open_redis(retries="5", timeout="5", connect_timeout="2")
        store.push("q", "r")
        (receipt,) = raw.scan_iter(match=f"{store.prefix}r:*")
        assert 120_000 + 6 * 7_000 < raw.pttl(receipt) <= 120_000 + 6 * 7_000 + 5_000
        assert raw.get(receipt) == b"1"


class TestRedisExpiry:
    def _pttl(self, raw: redis.Redis, store: RedisStore, key: str) -> int:
        return int(raw.pttl(store._key(key)))

    def test_keys_with_a_ttl_get_a_later_redis_expiry(
        self, open_redis: OpenRedis, raw: redis.Redis
    ) -> None:
        """Redis drops a key a minute after its logical TTL, never before."""
        store = open_redis()
        store.set("set", "v", ttl=30)
        store.set_if_absent("won", "v", ttl=10)
        store.incr("counter", ttl=5)
        for key, ttl in {"set": 30, "won": 10, "counter": 5}.items():
            assert (ttl + 59) * 1000 < self._pttl(raw, store, key) <= (ttl + 60) * 1000, key

    def test_keys_without_a_ttl_stay(self, open_redis: OpenRedis, raw: redis.Redis) -> None:
        """Permanent keys get no Redis expiry, also when they replace one that had it."""
        store = open_redis()
        store.set("k", "v", ttl=30)
        store.set("k", "v")
        store.incr("counter")
        store.append("s", "r", max_len=5)
        store.push("q", "r")
        store.schedule("d", "m", 1.0)
        assert self._pttl(raw, store, "k") == -1
        assert self._pttl(raw, store, "counter") == -1
        for name in ("s:s", "q:q", "d:d", "keys"):
            assert raw.pttl(f"{store.prefix}{name}") == -1

    def test_logical_expiry_follows_the_clock_not_redis(
        self, open_redis: OpenRedis, clock: ManualClock, raw: redis.Redis
    ) -> None:
        """A key past its TTL on the store's clock is gone though Redis still holds it."""
        store = open_redis()
        store.set("k", "v", ttl=5)
        clock.advance(5)
        assert store.get("k") is None
        assert store.keys("") == []
        assert raw.exists(store._key("k")) == 1
        assert store.set_if_absent("k", "again", ttl=5)

    def test_huge_ttl_gets_no_redis_expiry(self, open_redis: OpenRedis, raw: redis.Redis) -> None:
        """A TTL beyond Redis's range keeps the key rather than overflowing PEXPIRE."""
        store = open_redis()
        store.set("k", "v", ttl=1e300)
        assert store.get("k") == "v"
        assert self._pttl(raw, store, "k") == -1


class TestKeySet:
    def test_listing_spans_batches(self, open_redis: OpenRedis, clock: ManualClock) -> None:
        """keys and delete_prefix read past one script's batch, and count only live keys."""
        store = open_redis()
        wanted = [f"p:{index:04d}" for index in range(1234)]
        for index, key in enumerate(wanted):
            store.set(key, "v", ttl=None if index % 3 else 1)
        store.set("pz", "other")
        store.set("o:1", "other")
        clock.advance(1)
        live = [key for index, key in enumerate(wanted) if index % 3]
        assert store.keys("p:") == live
        assert store.delete_prefix("p:") == len(live)
        assert store.keys("") == ["o:1", "pz"]

    def test_names_of_expired_hashes_are_dropped_by_listing(
        self, open_redis: OpenRedis, raw: redis.Redis
    ) -> None:
        """A name whose hash Redis expired is not listed, and leaves the key set."""
        store = open_redis()
        store.set("gone", "v", ttl=1)
        store.set("kept", "v")
        raw.delete(store._key("gone"))  # what Redis's own expiry does a minute later
        assert store.keys("") == ["kept"]
        assert raw.zrange(store._key_set, 0, -1) == [b"kept"]

    def test_names_of_expired_hashes_are_swept_by_writes(
        self, open_redis: OpenRedis, raw: redis.Redis
    ) -> None:
        """Writes alone sweep the key set, so unread expired names do not pile up."""
        store = open_redis()
        for index in range(300):
            store.set(f"old:{index}", "v", ttl=1)
        raw.delete(*(store._key(f"old:{index}") for index in range(300)))
        for index in range(600):
            store.set(f"new:{index % 10}", "v")
        assert raw.zcard(store._key_set) == 10

    @pytest.mark.parametrize(
        ("prefix", "bounds"),
        [
            ("", (b"-", b"+")),
            ("ab", (b"[ab", b"(ac")),
            ("a\U0010ffff", (b"[a\xf4\x8f\xbf\xbf", b"(a\xf4\x8f\xbf\xc0")),
            ("é", (b"[\xc3\xa9", b"(\xc3\xaa")),
        ],
    )
    def test_lex_range(self, prefix: str, bounds: tuple[bytes, bytes]) -> None:
        """The range of a prefix runs from it to its byte-wise successor, excluded."""
        assert _lex_range(prefix) == bounds


# --- property: Redis answers as MemoryStore does, whatever the sequence ------------------


@attrs.define
class SharedRedis:
    """One Redis store for every example of the property test, and a run counter."""

    clock: ManualClock
    store: RedisStore
    runs: Iterator[int]


@pytest.fixture(scope="module")
def shared_redis(redis_server: RedisServer) -> Iterator[SharedRedis]:
    clock = ManualClock()
    store = RedisStore(redis_server.url(prefix="model:"), clock)
    yield SharedRedis(clock, store, itertools.count())
    store.close()
    redis_server.clear("model:")


_ALPHABET = "ab:%_*?[\x00é\U0010ffff"
_text = st.text(alphabet=_ALPHABET, max_size=3)
_ttl = st.sampled_from([0.0, 0.5, 1.0, 2.5])
_name = st.sampled_from("xy")
_values = st.sampled_from(["0", "7", "-3", str(2**63 - 1), "05", "-0", "x"]) | _text
_amounts = st.sampled_from([0, 1, -5, 2**63 - 1, -(2**63)])

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _text, _values, st.none() | _ttl),
        st.tuples(st.just("set_if_absent"), _text, _text, _ttl),
        st.tuples(st.just("get"), _text),
        st.tuples(st.just("delete"), _text),
        st.tuples(st.just("delete_prefix"), _text),
        st.tuples(st.just("keys"), _text),
        st.tuples(st.just("incr"), _text, _amounts, st.none() | _ttl),
        st.tuples(st.just("get_many"), st.lists(_text, max_size=4)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        st.tuples(st.just("append"), _name, _text, st.integers(1, 4)),
        st.tuples(st.just("tail"), _name, st.integers(0, 5)),
        st.tuples(st.just("push"), _name, _text),
        st.tuples(st.just("pop"), _name, st.integers(0, 4)),
        st.tuples(st.just("schedule"), _name, _text, st.sampled_from([-1.5, 0.0, 1.0, 2.5])),
        st.tuples(st.just("unschedule"), _name, _text),
        st.tuples(st.just("due"), _name, st.sampled_from([-math.inf, 0.0, 1.0, math.inf])),
    ),
    max_size=40,
)

_NAMED = {"append", "tail", "push", "pop", "schedule", "unschedule", "due"}
"""Operations whose first argument names a stream, queue or index (fresh per example)."""


def _outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except ValueError as exc:
        return ("refused", str(exc))


class TestAgainstMemory:
    @settings(max_examples=100, deadline=None)
    @given(operations=_operations)
    def test_redis_answers_as_memory_does(
        self, shared_redis: SharedRedis, operations: list[tuple[Any, ...]]
    ) -> None:
        """Any sequence of operations answers alike on Redis and on the in-memory store,
        refusals (ValueError, same message) included."""
        clock, redis_store = shared_redis.clock, shared_redis.store
        redis_store.delete_prefix("")
        run = next(shared_redis.runs)
        memory = MemoryStore(clock)
        try:
            for step, (name, *args) in enumerate(operations):
                if name == "advance":
                    clock.advance(args[0])
                    continue
                if name in _NAMED:
                    args[0] = f"run {run}: {args[0]}"
                if name == "due":
                    args.append(3)
                expected = _outcome(lambda: getattr(memory, name)(*args))  # noqa: B023
                got = _outcome(lambda: getattr(redis_store, name)(*args))  # noqa: B023
                assert got == expected, (step, name, args)
            assert redis_store.keys("") == memory.keys("")
        finally:
            memory.close()
