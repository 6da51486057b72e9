"""The Redis store: one server shared by every process on every machine.

URL: ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]``, or ``rediss://`` for TLS.
Options (all optional):

``prefix``
    Put every key under this prefix (default ``chaperone:``), so several applications
    can share one server and database.
``timeout``, ``connect_timeout``
    Seconds to wait for a reply (default 5) and for a connection (default 2).
``retries``
    How often a command is retried after a lost connection or a timeout, with
    exponential backoff from 0.1 s up to 1 s between tries (default 5: about 2.5 s in
    all), so a restart of Redis is ridden out. After that the operation raises
    :class:`~chaperone.StoreError`.
``ssl_ca_certs``, ``ssl_cert_reqs`` (``rediss://`` only)
    A CA bundle to verify the server with, and whether to (``required``, the default,
    ``optional`` or ``none``).

Every operation is one command, one ``MULTI``/``EXEC`` transaction or one Lua script
(sent by SHA and cached on the server), so it is atomic across processes and machines.
Nothing is sent when the store is opened: the first operation connects, so a job does
not fail to start because Redis is away.

**Time.** Expiry follows the store's clock, like the other backends: each value is kept
with the time it expires on the writer's clock, and a read compares that with the
reader's clock. Machines therefore judge expiry by their own clocks; with NTP they agree
to well under a second. Redis's own expiry (``PEXPIRE``, the TTL plus a minute) only
collects keys nobody reads any more: it never ends a key before its logical TTL, unless
the clocks of writer and reader are more than a minute apart.

**Layout.** Under the prefix ``P``: ``P k:KEY`` is a hash ``{v: value, x: expiry or
"" for never, n: owner token of set_if_absent}``; ``P keys`` a sorted set of every KEY
with a hash, all at score 0, so that ``keys`` and ``delete_prefix`` read one
lexicographic range of it (O(log n + k), like SQLite's primary key, where ``SCAN`` would
walk the whole database, other applications' keys included); ``P s:STREAM`` a list
(newest first), ``P d:INDEX`` a sorted set scored by time, ``P q:QUEUE`` a list (oldest
first). A hash that Redis expired leaves its name in ``P keys``; such names are dropped
as reads meet them and by a sweep of the set every few hundred writes. Scripts touch
hashes they find through ``P keys``, which Redis Cluster does not allow: use one server
(with replicas or Sentinel behind one address), not a cluster.

**Retries.** A command whose reply was lost with the connection (or came after the
timeout) is sent again, so it may run twice. Every operation that a second run would
change (``delete``, ``delete_prefix``, ``incr``, ``append``, ``push``, ``pop``,
``unschedule``) therefore leaves a receipt, ``P r:TOKEN``, holding its answer for a few
minutes: run again with the same token, it answers the same and changes nothing, so a
resent ``pop`` cannot lose records nor a resent ``push`` queue one twice.
``set_if_absent`` recognises its own earlier win by its owner token instead. (Should
Redis stay away past the retries after running a command, the caller gets StoreError
for what did happen.)
"""

from __future__ import annotations

import math
import secrets
import ssl
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, cast

import attrs
import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from chaperone._clock import Clock
from chaperone._exceptions import StoreError
from chaperone._secrets import MASKER, describe
from chaperone.store._memory import (
    _check_amount,
    _check_at,
    _check_limit,
    _check_max_len,
    _check_ttl,
    _check_until,
)

__all__ = ["DEFAULT_PREFIX", "RedisStore", "RedisUrlError"]

DEFAULT_PREFIX: Final = "chaperone:"
"""The key prefix of a store whose URL names none."""

_DEFAULT_PORT: Final = 6379
_DEFAULT_TIMEOUT_S: Final = 5.0
_DEFAULT_CONNECT_TIMEOUT_S: Final = 2.0
_DEFAULT_RETRIES: Final = 5
_MAX_RETRIES: Final = 20
_BACKOFF_BASE_S: Final = 0.05
"""The first retry waits twice this, each next one twice as long..."""
_BACKOFF_CAP_S: Final = 1.0
"""... up to this."""

_GC_MARGIN_S: Final = 60.0
"""Redis drops a key this long after its logical expiry (a backstop, not the expiry)."""
_GC_MAX_MS: Final = 2**46
"""Past this (about 2,000 years) a key gets no Redis expiry at all."""

_BATCH: Final = 500
"""Keys per script run of ``keys`` and ``delete_prefix``, so no run blocks Redis long."""
_SWEEP_EVERY: Final = 256
"""Sweep a stretch of the key set for names whose hash Redis expired after this many
writes (per store object), ..."""
_SWEEP_STRETCH: Final = 1024
"""... looking at this many names, so sweeping outpaces writing."""
_RECEIPT_MARGIN_S: Final = 120.0
"""Receipts outlive the longest a command can be retried for by this much."""
_MAX_BATCHES: Final = 1_000_000
"""A bound on the batches of one ``delete_prefix``, against writers that never stop."""

_CERT_REQS: Final = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL}
_OPTIONS: Final = (
    "prefix",
    "timeout",
    "connect_timeout",
    "retries",
    "ssl_ca_certs",
    "ssl_cert_reqs",
)

_LIVE_LUA = "x and (x == '' or tonumber(x) > tonumber(ARGV[1]))"
"""Lua: whether the expiry ``x`` read from a hash is unexpired at ``ARGV[1]`` (now)."""

_SET_IF_ABSENT = f"""
local x = redis.call('HGET', KEYS[1], 'x')
if {_LIVE_LUA} then
    if redis.call('HGET', KEYS[1], 'n') == ARGV[6] then return 1 end
    return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'x', ARGV[4], 'n', ARGV[6])
if ARGV[5] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return 1
"""
"""KEYS: the key's hash, the key set. ARGV: now, key, value, expires at, Redis expiry in
ms or '', owner token.

A live key held by the same token is this caller's own win, sent again after a lost
reply: it answers 1 again rather than telling the winner it lost."""


def _receipted(body: str) -> str:
    """A script that runs the Lua ``body`` (which ends by returning its answer) at most
    once per receipt: the last of KEYS, kept for the milliseconds in the last of ARGV.

    A run that finds the receipt answers what the first run answered, and does nothing.
    An error reply leaves no receipt.
    """
    return f"""
local done = redis.call('GET', KEYS[#KEYS])
if done then return cjson.decode(done) end
local answer = (function()
{body}
end)()
if type(answer) == 'table' and answer.err then return answer end
redis.call('SET', KEYS[#KEYS], cjson.encode(answer), 'PX', ARGV[#ARGV])
return answer
"""


_INCR = _receipted(f"""
local x = redis.call('HGET', KEYS[1], 'x')
if {_LIVE_LUA} then
    local added = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[3])
    if type(added) == 'table' and added.err then return added end
    return redis.call('HGET', KEYS[1], 'v')
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'x', ARGV[4])
if ARGV[5] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return ARGV[3]
""")
"""KEYS: the key's hash, the key set, the receipt. ARGV: now, key, amount, expires at or
'', Redis expiry in ms or '', receipt ms.

HINCRBY does the 64-bit arithmetic (Lua numbers are doubles) and refuses, changing
nothing, a value that is not a canonical 64-bit integer or a sum that overflows; the
new value is read back as text for the same reason."""

_KEYS = f"""
local names = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local found = {{#names < tonumber(ARGV[4]) and '' or names[#names]}}
for _, name in ipairs(names) do
    local x = redis.call('HGET', ARGV[5] .. name, 'x')
    if {_LIVE_LUA} then
        found[#found + 1] = name
    elseif not x and redis.call('EXISTS', ARGV[5] .. name) == 0 then
        redis.call('ZREM', KEYS[1], name)
    end
end
return found
"""
"""KEYS: the key set. ARGV: now, lowest, highest (ZRANGEBYLEX bounds), batch size, the
hashes' name prefix. Returns where to go on from ('' when the range is done), then the
unexpired keys of the batch; drops names whose hash is gone."""

_DELETE = _receipted(f"""
local x = redis.call('HGET', KEYS[1], 'x')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if {_LIVE_LUA} then return 1 end
return 0
""")
"""KEYS: the key's hash, the key set, the receipt. ARGV: now, key, receipt ms. Returns
whether the key was unexpired."""

_DELETE_RANGE = _receipted(f"""
local names = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3], 'LIMIT', 0, ARGV[4])
local live = 0
for _, name in ipairs(names) do
    local x = redis.call('HGET', ARGV[5] .. name, 'x')
    if {_LIVE_LUA} then live = live + 1 end
    redis.call('UNLINK', ARGV[5] .. name)
end
if #names > 0 then redis.call('ZREM', KEYS[1], unpack(names)) end
return {{live, #names}}
""")
"""KEYS: the key set, the receipt. ARGV: now, lowest, highest, batch size, the hashes'
name prefix, receipt ms.
Deletes the first batch of the range, hashes and names; returns how many of them were
unexpired and how many there were."""

_APPEND = _receipted("""
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return 1
""")
"""KEYS: the stream, the receipt. ARGV: record, max_len, receipt ms."""

_PUSH = _receipted("""
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
""")
"""KEYS: the queue, the receipt. ARGV: record, receipt ms."""

_POP = _receipted("""
local records = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
return records
""")
"""KEYS: the queue, the receipt. ARGV: how many, receipt ms. Returns the oldest records."""

_UNSCHEDULE = _receipted("""
return redis.call('ZREM', KEYS[1], ARGV[1])
""")
"""KEYS: the deadline index, the receipt. ARGV: member, receipt ms."""

_SWEEP = """
local names = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, ARGV[2])
for _, name in ipairs(names) do
    if redis.call('EXISTS', ARGV[3] .. name) == 0 then redis.call('ZREM', KEYS[1], name) end
end
if #names < tonumber(ARGV[2]) then return '' end
return names[#names]
"""
"""KEYS: the key set. ARGV: lowest, how many, the hashes' name prefix. Drops names whose
hash Redis expired; returns the last name looked at ('' at the end of the set)."""


class RedisUrlError(ValueError):
    """A ``redis://`` URL that cannot be used. The message never quotes the URL."""


@attrs.frozen
class RedisOptions:
    """What a ``redis://`` or ``rediss://`` URL says."""

    host: str
    port: int
    db: int
    username: str | None = attrs.field(repr=False)
    password: str | None = attrs.field(repr=False)
    tls: bool
    prefix: str = DEFAULT_PREFIX
    timeout: float = _DEFAULT_TIMEOUT_S
    connect_timeout: float = _DEFAULT_CONNECT_TIMEOUT_S
    retries: int = _DEFAULT_RETRIES
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "required"

    @property
    def address(self) -> str:
        """``host:port/db``, for messages (never with credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisOptions:
    """Read ``url``; raise :class:`RedisUrlError` saying what is wrong, without quoting it.

    The password (as written and percent-decoded) is registered with the secret masker
    before anything else, so no later message can show it.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        raise RedisUrlError("not a valid redis:// URL") from None
    password = None if parts.password is None else urllib.parse.unquote(parts.password)
    for secret in {parts.password, password} - {None, ""}:
        MASKER.add(cast(str, secret))
    scheme = parts.scheme.lower()
    if scheme not in {"redis", "rediss"}:
        raise RedisUrlError("a Redis URL starts with redis:// or rediss://")
    try:
        port = parts.port or _DEFAULT_PORT
    except ValueError:
        raise RedisUrlError("the port must be a number from 1 to 65535") from None
    username = urllib.parse.unquote(parts.username) if parts.username else None
    options: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": port,
        "db": _db(parts.path),
        "username": username,
        "password": password or None,
        "tls": scheme == "rediss",
    }
    options.update(_query(parts.query, tls=options["tls"]))
    return RedisOptions(**options)


def _db(path: str) -> int:
    number = path.removeprefix("/")
    if not number:
        return 0
    if not (number.isascii() and number.isdigit()):
        raise RedisUrlError("the path must be /DB, a database number such as /0")
    return int(number)


def _query(query: str, *, tls: bool) -> dict[str, Any]:
    """The options of the query string, checked."""
    found: dict[str, Any] = {}
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if name not in _OPTIONS:
            shown = MASKER.mask(name)[:40]
            raise RedisUrlError(
                f"unknown option {shown!r} in the query; known: {', '.join(_OPTIONS)} "
                "(a password goes before the host: redis://:PASSWORD@HOST)"
            )
        if name in found:
            raise RedisUrlError(f"the option {name} is given twice")
        if name.startswith("ssl_") and not tls:
            raise RedisUrlError(f"the option {name} needs rediss:// (TLS)")
        found[name] = _option(name, value)
    return found


def _option(name: str, value: str) -> Any:
    if name in {"prefix", "ssl_ca_certs"}:
        return value
    if name == "ssl_cert_reqs":
        if value not in {*_CERT_REQS, "none"}:
            raise RedisUrlError("ssl_cert_reqs must be required, optional or none")
        return value
    if name == "retries":
        if not (value.isascii() and value.isdigit() and int(value) <= _MAX_RETRIES):
            raise RedisUrlError(f"retries must be a whole number from 0 to {_MAX_RETRIES}")
        return int(value)
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise RedisUrlError(f"{name} must be a positive number of seconds")
    return seconds


class RedisStore:
    """A :class:`~chaperone.store.Store` on a Redis server, shared by every machine that
    reaches it; safe across threads (one connection pool per store).

    ``url`` is read as the module describes; a malformed one raises
    :class:`RedisUrlError`. Opening sends nothing. A failure of Redis (after the retries
    for lost connections) raises :class:`~chaperone.StoreError` naming the operation and
    ``host:port/db``, never the password. Expiry is judged with ``clock.timestamp()``.
    """

    def __init__(self, url: str, clock: Clock) -> None:
        options = parse_redis_url(url)
        self.url: str = url
        """Where the store lives, as given to :func:`chaperone.store.open_store`."""
        self.address: str = options.address
        """``host:port/db``: where the server is, without credentials."""
        self.prefix: str = options.prefix
        """The prefix of every key this store writes."""
        self._clock = clock
        self._closed = False
        self._client = redis.Redis(**_client_arguments(options))
        self._hashes = f"{self.prefix}k:"
        self._key_set = f"{self.prefix}keys"
        self._writes = 0
        self._swept_to = b""
        self._receipt_ms = str(_receipt_ms(options))
        script = self._client.register_script
        self._set_if_absent = script(_SET_IF_ABSENT)
        self._incr = script(_INCR)
        self._delete = script(_DELETE)
        self._keys = script(_KEYS)
        self._delete_range = script(_DELETE_RANGE)
        self._append = script(_APPEND)
        self._push = script(_PUSH)
        self._pop = script(_POP)
        self._unschedule = script(_UNSCHEDULE)
        self._sweep = script(_SWEEP)

    def __repr__(self) -> str:
        return f"RedisStore(address={self.address!r}, prefix={self.prefix!r})"

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds unless it holds an unexpired value.

        One Lua script reads the stored expiry and writes only when it has passed, so of
        any number of concurrent callers on any machines exactly one gets ``True``.
        """
        _check_ttl(ttl)
        with self._using("set a key"):
            now = self._clock.timestamp()
            token = secrets.token_hex(8)
            args = [repr(now), key, value, repr(now + ttl), _gc_ms(ttl), token]
            won = self._set_if_absent(keys=[self._key(key), self._key_set], args=args)
            self._wrote()
            return bool(won)

    def get(self, key: str) -> str | None:
        """Return the unexpired value of ``key``, or None."""
        with self._using("read a key") as client:
            value, expires_at = client.hmget(self._key(key), ["v", "x"])
            if value is None or not _unexpired(expires_at, self._clock.timestamp()):
                return None
            return _text(value)

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (never when None)."""
        if ttl is not None:
            _check_ttl(ttl)
        with self._using("set a key") as client:
            name = self._key(key)
            expires_at = "" if ttl is None else repr(self._clock.timestamp() + ttl)
            pipe = client.pipeline(transaction=True)
            pipe.delete(name)
            pipe.hset(name, mapping={"v": value, "x": expires_at})
            if ttl is not None and (gc_ms := _gc_ms(ttl)):
                pipe.pexpire(name, int(gc_ms))
            pipe.zadd(self._key_set, {key: 0})
            pipe.execute()
            self._wrote()

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether an unexpired value was there."""
        with self._using("delete a key"):
            keys = [self._key(key), self._key_set, self._receipt()]
            args = [repr(self._clock.timestamp()), key, self._receipt_ms]
            return bool(self._delete(keys=keys, args=args))

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with ``prefix``; return how many unexpired ones went.

        One Lua script per batch of the key set's range for ``prefix`` deletes the hashes
        and their names together. A key written while the batches run may stay.
        """
        lowest, highest = _lex_range(prefix)
        with self._using("delete keys"):
            deleted = 0
            for _ in range(_MAX_BATCHES):
                now = repr(self._clock.timestamp())
                args: list[str | bytes | int] = [now, lowest, highest, _BATCH, self._hashes]
                args.append(self._receipt_ms)
                keys = [self._key_set, self._receipt()]
                live, seen = self._delete_range(keys=keys, args=args)
                deleted += int(live)
                if int(seen) < _BATCH:
                    return deleted
            raise StoreError(
                f"the Redis store {self.address} could not delete keys: other writers kept "
                f"adding keys under the prefix ({_MAX_BATCHES} batches)"
            )

    def keys(self, prefix: str) -> list[str]:
        """Return the unexpired keys that start with ``prefix``, sorted.

        Reads the key set's range for ``prefix`` in batches, one Lua script each.
        """
        lowest, highest = _lex_range(prefix)
        with self._using("list keys"):
            found: list[str] = []
            while True:
                now = repr(self._clock.timestamp())
                args: list[str | bytes | int] = [now, lowest, highest, _BATCH, self._hashes]
                last, *live = self._keys(keys=[self._key_set], args=args)
                found.extend(_text(name) for name in live)
                if not last:
                    return sorted(found)
                lowest = b"(" + last

    def append(self, stream: str, record: str, max_len: int) -> None:
        """Append ``record`` to ``stream``, keeping at most the newest ``max_len`` records."""
        _check_max_len(max_len)
        with self._using("append to a stream"):
            keys = [self._name("s", stream), self._receipt()]
            self._append(keys=keys, args=[record, max_len, self._receipt_ms])

    def tail(self, stream: str, limit: int) -> list[str]:
        """Return up to ``limit`` records of ``stream``, newest first."""
        _check_limit(limit)
        with self._using("read a stream") as client:
            if limit == 0:
                return []
            records = client.lrange(self._name("s", stream), 0, limit - 1)
            return [_text(record) for record in records]

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (0 when absent or expired); return the sum.

        One Lua script around ``HINCRBY``, so concurrent calls from any number of
        machines add up exactly. ``ttl`` sets the expiry only when this call creates the
        key. A live value that is not a 64-bit integer in canonical form, or a sum outside
        that range, raises ValueError naming the key and changes nothing.
        """
        _check_amount(amount)
        if ttl is not None:
            _check_ttl(ttl)
        with self._using("add to a counter"):
            now = self._clock.timestamp()
            expires_at = "" if ttl is None else repr(now + ttl)
            gc_ms = "" if ttl is None else _gc_ms(ttl)
            args = [repr(now), key, str(amount), expires_at, gc_ms, self._receipt_ms]
            keys = [self._key(key), self._key_set, self._receipt()]
            try:
                total = self._incr(keys=keys, args=args)
            except ResponseError as exc:
                if "not an integer" in str(exc):
                    raise ValueError(
                        f"the value at key {key!r} is not a 64-bit integer, so incr cannot add"
                    ) from None
                if "overflow" in str(exc):
                    raise ValueError(
                        f"adding {amount} to the counter at key {key!r} would overflow 64 bits"
                    ) from None
                raise
            self._wrote()
            return int(_text(total))

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """Return the unexpired values of ``keys`` that exist, read in one transaction."""
        unique = list(dict.fromkeys(keys))
        with self._using("read keys") as client:
            if not unique:
                return {}
            pipe = client.pipeline(transaction=True)
            for key in unique:
                pipe.hmget(self._key(key), ["v", "x"])
            now = self._clock.timestamp()
            return {
                key: _text(value)
                for key, (value, expires_at) in zip(unique, pipe.execute(), strict=True)
                if value is not None and _unexpired(expires_at, now)
            }

    def schedule(self, index: str, member: str, at: float) -> None:
        """Put ``member`` in the deadline index ``index`` at time ``at``, replacing its old time."""
        _check_at(at)
        with self._using("schedule a deadline") as client:
            client.zadd(self._name("d", index), {member: float(at)})

    def unschedule(self, index: str, member: str) -> bool:
        """Take ``member`` out of ``index``; return whether it was there."""
        with self._using("unschedule a deadline"):
            keys = [self._name("d", index), self._receipt()]
            return bool(self._unschedule(keys=keys, args=[member, self._receipt_ms]))

    def due(self, index: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Return up to ``limit`` members of ``index`` due by ``until``, earliest first.

        Members due at the same time come in member order. One ``ZRANGEBYSCORE … LIMIT``
        of a sorted set: O(log n + k).
        """
        _check_until(until)
        _check_limit(limit)
        with self._using("read deadlines") as client:
            if limit == 0 or until == -math.inf:
                return []
            highest = "+inf" if until == math.inf else repr(float(until))
            found = client.zrangebyscore(
                self._name("d", index), "-inf", highest, start=0, num=limit, withscores=True
            )
            pairs = cast(list[tuple[bytes, float]], found)
            return [(_text(member), float(at)) for member, at in pairs]

    def push(self, queue: str, record: str) -> None:
        """Append ``record`` to the FIFO ``queue``."""
        with self._using("push to a queue"):
            keys = [self._name("q", queue), self._receipt()]
            self._push(keys=keys, args=[record, self._receipt_ms])

    def pop(self, queue: str, limit: int) -> list[str]:
        """Remove and return up to ``limit`` of the oldest records of ``queue``, oldest first.

        ``LRANGE`` and ``LTRIM`` in one Lua script, so of processes popping at once each
        record goes to exactly one; its receipt keeps a resent pop from dropping them.
        """
        _check_limit(limit)
        with self._using("pop from a queue"):
            if limit == 0:
                return []
            keys = [self._name("q", queue), self._receipt()]
            records = self._pop(keys=keys, args=[limit, self._receipt_ms])
            return [_text(record) for record in records]

    def close(self) -> None:
        """Close the connections. The store is unusable afterwards; closing twice is harmless."""
        self._closed = True
        self._client.close()
        self._client.connection_pool.disconnect()

    @contextmanager
    def _using(self, action: str) -> Iterator[redis.Redis]:
        """Yield the client; turn Redis failures into StoreError naming ``action``."""
        if self._closed:
            raise StoreError(f"the Redis store {self.address} is closed")
        try:
            yield self._client
        except (RedisError, UnicodeDecodeError) as exc:
            reason = describe(exc)
            message = f"the Redis store {self.address} could not {action}: {reason}"
            raise StoreError(message) from exc

    def _key(self, key: str) -> str:
        return f"{self.prefix}k:{key}"

    def _name(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def _receipt(self) -> str:
        """A fresh receipt name for one call (the same across redis-py's resends of it)."""
        return self._name("r", secrets.token_hex(8))

    def _wrote(self) -> None:
        """Count a write; every so often sweep a stretch of the key set. A failure of the
        sweep fails no caller.
        """
        self._writes += 1
        if self._writes % _SWEEP_EVERY:
            return
        lowest = b"(" + self._swept_to if self._swept_to else b"-"
        try:
            last = self._sweep(keys=[self._key_set], args=[lowest, _SWEEP_STRETCH, self._hashes])
        except RedisError:
            return  # housekeeping only: the next sweep tries again; stale names are invisible
        self._swept_to = bytes(last)


def _client_arguments(options: RedisOptions) -> dict[str, Any]:
    """The redis-py client's arguments: a pool, timeouts, RESP2, and retries of lost
    connections and timeouts with exponential backoff.
    """
    arguments: dict[str, Any] = {
        "host": options.host,
        "port": options.port,
        "db": options.db,
        "username": options.username,
        "password": options.password,
        "socket_timeout": options.timeout,
        "socket_connect_timeout": options.connect_timeout,
        "socket_keepalive": True,
        "retry": Retry(
            ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S), options.retries
        ),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "protocol": 2,
        "client_name": "chaperone",
    }
    if options.tls:
        arguments["ssl"] = True
        arguments["ssl_cert_reqs"] = _CERT_REQS.get(options.ssl_cert_reqs, ssl.CERT_NONE)
        arguments["ssl_ca_certs"] = options.ssl_ca_certs
        arguments["ssl_check_hostname"] = options.ssl_cert_reqs == "required"
    return arguments


def _receipt_ms(options: RedisOptions) -> int:
    """How long a receipt is kept: longer than every try of a command can take."""
    per_try = options.timeout + options.connect_timeout
    retrying = (options.retries + 1) * per_try + options.retries * _BACKOFF_CAP_S
    return math.ceil((retrying + _RECEIPT_MARGIN_S) * 1000)


def _gc_ms(ttl: float) -> str:
    """Redis's own expiry for a key of logical ``ttl``: later, by a margin; '' for none."""
    gc_ms = math.ceil((ttl + _GC_MARGIN_S) * 1000)
    return str(gc_ms) if gc_ms <= _GC_MAX_MS else ""


def _unexpired(expires_at: bytes | str | None, now: float) -> bool:
    """Whether a stored expiry ("" for never, None for no key) is still ahead of ``now``."""
    if expires_at is None:
        return False
    text = _text(expires_at)
    return text == "" or float(text) > now


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _lex_range(prefix: str) -> tuple[bytes, bytes]:
    """The ZRANGEBYLEX bounds of the names that start with ``prefix``.

    Redis compares names byte by byte, and UTF-8 byte order is code point order, so the
    range runs from ``prefix`` up to (not including) the shortest byte string above every
    name that starts with it: drop trailing 0xFF bytes, add one to the last byte.
    """
    lowest = prefix.encode()
    if not lowest:
        return b"-", b"+"
    upper = lowest.rstrip(b"\xff")
    if not upper:
        return b"[" + lowest, b"+"
    return b"[" + lowest, b"(" + upper[:-1] + bytes([upper[-1] + 1])
