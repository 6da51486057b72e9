"""The Store contract, checked on every backend, plus a model-based property test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone._exceptions import StoreError
from chaperone.store import MemoryStore, Store
from helpers.stores import SharedSQLite


class TestProtocol:
    def test_backend_satisfies_the_protocol(self, store: Store) -> None:
        """Each backend is recognised as a Store at runtime."""
        assert isinstance(store, Store)


class TestSetIfAbsent:
    def test_first_caller_wins(self, store: Store) -> None:
        """Setting an absent key succeeds and stores the value."""
        assert store.set_if_absent("k", "first", ttl=10)
        assert store.get("k") == "first"

    def test_second_caller_loses_and_value_stays(self, store: Store) -> None:
        """While the key is unexpired a second caller gets False and changes nothing."""
        store.set_if_absent("k", "first", ttl=10)
        assert not store.set_if_absent("k", "second", ttl=100)
        assert store.get("k") == "first"

    def test_losing_does_not_extend_the_ttl(self, store: Store, clock: ManualClock) -> None:
        """A losing call leaves the original expiry in place."""
        store.set_if_absent("k", "first", ttl=10)
        clock.advance(5)
        store.set_if_absent("k", "second", ttl=100)
        clock.advance(5)
        assert store.get("k") is None

    def test_wins_again_once_expired(self, store: Store, clock: ManualClock) -> None:
        """After the TTL the key counts as absent and a new caller wins."""
        store.set_if_absent("k", "first", ttl=10)
        clock.advance(10)
        assert store.set_if_absent("k", "second", ttl=10)
        assert store.get("k") == "second"

    def test_just_before_expiry_still_held(self, store: Store, clock: ManualClock) -> None:
        """A microsecond before the TTL ends the key still blocks."""
        store.set_if_absent("k", "first", ttl=10)
        clock.advance(9.999999)
        assert not store.set_if_absent("k", "second", ttl=10)

    def test_never_overrides_a_key_without_ttl(self, store: Store, clock: ManualClock) -> None:
        """A key set without TTL blocks set_if_absent forever."""
        store.set("k", "forever")
        clock.advance(10 * 365 * 86400)
        assert not store.set_if_absent("k", "other", ttl=1)
        assert store.get("k") == "forever"

    def test_zero_ttl_is_expired_at_once(self, store: Store) -> None:
        """A zero TTL wins but holds nothing, so the next caller wins too."""
        assert store.set_if_absent("k", "a", ttl=0)
        assert store.get("k") is None
        assert store.set_if_absent("k", "b", ttl=0)

    @pytest.mark.parametrize("ttl", [-1.0, float("nan"), float("inf")])
    def test_rejects_bad_ttl(self, store: Store, ttl: float) -> None:
        """A negative or non-finite TTL is a programming error."""
        with pytest.raises(ValueError, match="ttl"):
            store.set_if_absent("k", "v", ttl=ttl)
        assert store.get("k") is None

    def test_one_winner_among_threads(self, store: Store) -> None:
        """Of many threads racing for one key exactly one wins."""
        threads_count = 16
        barrier = threading.Barrier(threads_count)
        results: list[bool] = []
        results_lock = threading.Lock()

        def race() -> None:
            barrier.wait(timeout=10)
            won = store.set_if_absent("race", threading.current_thread().name, ttl=60)
            with results_lock:
                results.append(won)

        threads = [threading.Thread(target=race, name=f"t{i}") for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert len(results) == threads_count
        assert results.count(True) == 1
        winner = store.get("race")
        assert winner in {thread.name for thread in threads}


class TestGetAndSet:
    def test_missing_key_is_none(self, store: Store) -> None:
        """An unknown key reads as None."""
        assert store.get("nope") is None

    def test_set_overwrites(self, store: Store) -> None:
        """Set replaces whatever value was there."""
        store.set("k", "a")
        store.set("k", "b")
        assert store.get("k") == "b"

    def test_set_overwrites_an_unexpired_value(self, store: Store) -> None:
        """Unlike set_if_absent, set replaces a value whose TTL has not run out."""
        store.set_if_absent("k", "a", ttl=60)
        store.set("k", "b", ttl=60)
        assert store.get("k") == "b"

    def test_ttl_expires(self, store: Store, clock: ManualClock) -> None:
        """A value with a TTL reads as None exactly when the TTL has passed."""
        store.set("k", "v", ttl=30)
        clock.advance(29.5)
        assert store.get("k") == "v"
        clock.advance(0.5)
        assert store.get("k") is None

    def test_set_without_ttl_clears_an_earlier_ttl(self, store: Store, clock: ManualClock) -> None:
        """Setting a key again without TTL makes it permanent."""
        store.set("k", "a", ttl=5)
        store.set("k", "b")
        clock.advance(1000)
        assert store.get("k") == "b"

    def test_set_with_ttl_replaces_a_permanent_value(
        self, store: Store, clock: ManualClock
    ) -> None:
        """Setting a permanent key again with a TTL makes it expire."""
        store.set("k", "a")
        store.set("k", "b", ttl=5)
        clock.advance(5)
        assert store.get("k") is None

    def test_keeps_text_exactly(self, store: Store) -> None:
        """Keys and values survive unicode, quotes, NULs and empty strings unchanged."""
        odd = ["", "'; DROP TABLE kv; --", "naïve ☃ \U0001f600", "a\x00b", "%_*?[]"]
        for index, text in enumerate(odd):
            store.set(text, f"value {index}")
            store.set(f"key {index}", text)
        for index, text in enumerate(odd):
            assert store.get(text) == f"value {index}"
            assert store.get(f"key {index}") == text

    def test_rejects_bad_ttl(self, store: Store) -> None:
        """Set refuses a negative TTL rather than storing an already-dead value."""
        with pytest.raises(ValueError, match="ttl"):
            store.set("k", "v", ttl=-5)


class TestDelete:
    def test_deletes_a_live_key(self, store: Store) -> None:
        """Deleting a live key reports True and the key is gone."""
        store.set("k", "v")
        assert store.delete("k")
        assert store.get("k") is None

    def test_missing_key_reports_false(self, store: Store) -> None:
        """Deleting an unknown key reports False."""
        assert not store.delete("k")

    def test_expired_key_reports_false(self, store: Store, clock: ManualClock) -> None:
        """Deleting a key whose TTL ran out reports False."""
        store.set("k", "v", ttl=1)
        clock.advance(2)
        assert not store.delete("k")

    def test_second_delete_reports_false(self, store: Store) -> None:
        """A key deleted once is not there to delete again."""
        store.set("k", "v")
        store.delete("k")
        assert not store.delete("k")

    def test_delete_frees_the_key_for_set_if_absent(self, store: Store) -> None:
        """After delete, set_if_absent wins again."""
        store.set_if_absent("k", "a", ttl=60)
        store.delete("k")
        assert store.set_if_absent("k", "b", ttl=60)


class TestPrefixes:
    def test_keys_sorted_and_filtered(self, store: Store) -> None:
        """Keys lists only keys with the prefix, sorted."""
        for key in ["rl:b", "rl:a", "rl:c", "dedup:a", "rl", "rm:a"]:
            store.set(key, "v")
        assert store.keys("rl:") == ["rl:a", "rl:b", "rl:c"]
        assert store.keys("") == sorted(["rl:b", "rl:a", "rl:c", "dedup:a", "rl", "rm:a"])

    def test_keys_skip_expired(self, store: Store, clock: ManualClock) -> None:
        """Expired keys are not listed."""
        store.set("p:short", "v", ttl=1)
        store.set("p:long", "v", ttl=100)
        clock.advance(1)
        assert store.keys("p:") == ["p:long"]

    def test_prefix_is_literal(self, store: Store) -> None:
        """LIKE and GLOB wildcards in a prefix match only themselves."""
        for key in ["a%b", "axb", "a_b", "a*b", "A%B"]:
            store.set(key, "v")
        assert store.keys("a%") == ["a%b"]
        assert store.keys("a_") == ["a_b"]
        assert store.keys("a*") == ["a*b"]

    def test_prefix_ending_in_the_highest_code_point(self, store: Store) -> None:
        """A prefix ending in U+10FFFF still selects exactly the keys that start with it."""
        top = "\U0010ffff"
        for key in ["a", f"a{top}", f"a{top}{top}z", "b", f"{top}", f"{top}x"]:
            store.set(key, "v")
        assert store.keys(f"a{top}") == [f"a{top}", f"a{top}{top}z"]
        assert store.keys(top) == [top, f"{top}x"]

    def test_delete_prefix_counts_live_keys(self, store: Store, clock: ManualClock) -> None:
        """delete_prefix removes every matching key and counts only the unexpired ones."""
        store.set("p:1", "v")
        store.set("p:2", "v", ttl=100)
        store.set("p:3", "v", ttl=1)
        store.set("q:1", "v")
        clock.advance(1)
        assert store.delete_prefix("p:") == 2
        assert store.keys("") == ["q:1"]
        assert store.set_if_absent("p:3", "again", ttl=1)

    def test_delete_prefix_with_nothing_to_delete(self, store: Store) -> None:
        """delete_prefix on an unused prefix reports zero and leaves other keys."""
        store.set("a", "v")
        assert store.delete_prefix("b") == 0
        assert store.get("a") == "v"


class TestStreams:
    def test_tail_is_newest_first(self, store: Store) -> None:
        """Tail returns records newest first, up to the limit."""
        for index in range(5):
            store.append("s", f"r{index}", max_len=100)
        assert store.tail("s", 3) == ["r4", "r3", "r2"]
        assert store.tail("s", 100) == ["r4", "r3", "r2", "r1", "r0"]

    def test_append_trims_to_max_len(self, store: Store) -> None:
        """Only the newest max_len records are kept."""
        for index in range(10):
            store.append("s", f"r{index}", max_len=3)
        assert store.tail("s", 100) == ["r9", "r8", "r7"]

    def test_smaller_max_len_trims_older_records(self, store: Store) -> None:
        """An append with a smaller max_len trims what earlier appends kept."""
        for index in range(5):
            store.append("s", f"r{index}", max_len=10)
        store.append("s", "r5", max_len=2)
        assert store.tail("s", 100) == ["r5", "r4"]

    def test_streams_are_independent(self, store: Store) -> None:
        """Trimming one stream leaves another alone."""
        store.append("a", "a0", max_len=5)
        store.append("b", "b0", max_len=1)
        store.append("b", "b1", max_len=1)
        assert store.tail("a", 10) == ["a0"]
        assert store.tail("b", 10) == ["b1"]

    def test_unknown_stream_and_zero_limit(self, store: Store) -> None:
        """An unknown stream, or a limit of zero, yields no records."""
        store.append("s", "r", max_len=5)
        assert store.tail("nope", 10) == []
        assert store.tail("s", 0) == []

    def test_streams_do_not_expire(self, store: Store, clock: ManualClock) -> None:
        """Stream records stay regardless of the clock."""
        store.append("s", "r", max_len=5)
        clock.advance(10 * 365 * 86400)
        assert store.tail("s", 10) == ["r"]

    def test_rejects_bad_bounds(self, store: Store) -> None:
        """A max_len below one or a negative limit is a programming error."""
        with pytest.raises(ValueError, match="max_len"):
            store.append("s", "r", max_len=0)
        with pytest.raises(ValueError, match="limit"):
            store.tail("s", -1)
        assert store.tail("s", 10) == []


class TestClose:
    @pytest.mark.parametrize(
        "use",
        [
            lambda s: s.get("k"),
            lambda s: s.set("k", "v"),
            lambda s: s.set_if_absent("k", "v", 1),
            lambda s: s.delete("k"),
            lambda s: s.delete_prefix(""),
            lambda s: s.keys(""),
            lambda s: s.append("s", "r", 1),
            lambda s: s.tail("s", 1),
        ],
        ids=["get", "set", "set_if_absent", "delete", "delete_prefix", "keys", "append", "tail"],
    )
    def test_closed_store_refuses(self, store: Store, use: Callable[[Store], Any]) -> None:
        """Every operation on a closed store raises StoreError."""
        store.close()
        with pytest.raises(StoreError, match="closed"):
            use(store)

    def test_close_twice(self, store: Store) -> None:
        """Closing an already closed store is harmless."""
        store.close()
        store.close()
        with pytest.raises(StoreError):
            store.get("k")


class TestPurge:
    def test_many_writes_keep_working_across_purges(self, store: Store, clock: ManualClock) -> None:
        """Expired keys purged along the way never take live keys with them."""
        for index in range(600):
            store.set(f"tmp:{index}", "v", ttl=1)
            store.set(f"keep:{index % 7}", str(index))
            clock.advance(0.25)
            live = [f"tmp:{j}" for j in range(max(0, index - 2), index + 1)]
            assert store.keys("tmp:") == sorted(live), index
        assert store.keys("keep:") == [f"keep:{i}" for i in range(7)]
        assert store.get("keep:0") == "595"


# --- property: every backend behaves like a trivial dict model ------------------------------

_ALPHABET = "ab:%_\x00é\ud7ff\U0010ffff"
_text = st.text(alphabet=_ALPHABET, max_size=3)
_ttl = st.sampled_from([0.0, 0.5, 1.0, 2.5, 10.0])

_operations = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _text, _text, st.none() | _ttl),
        st.tuples(st.just("set_if_absent"), _text, _text, _ttl),
        st.tuples(st.just("get"), _text),
        st.tuples(st.just("delete"), _text),
        st.tuples(st.just("delete_prefix"), _text),
        st.tuples(st.just("keys"), _text),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        st.tuples(st.just("append"), st.sampled_from("xy"), _text, st.integers(1, 4)),
        st.tuples(st.just("tail"), st.sampled_from("xy"), st.integers(0, 5)),
    ),
    max_size=40,
)


class DictModel:
    """The contract in its plainest form, against which the backends are compared."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.values: dict[str, tuple[str, float | None]] = {}
        self.streams: dict[str, list[str]] = {}

    def _alive(self, key: str) -> bool:
        if key not in self.values:
            return False
        expires_at = self.values[key][1]
        return expires_at is None or expires_at > self.clock.timestamp()

    def set(self, key: str, value: str, ttl: float | None = None) -> None:
        now = self.clock.timestamp()
        self.values[key] = (value, None if ttl is None else now + ttl)

    def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        if self._alive(key):
            return False
        self.set(key, value, ttl)
        return True

    def get(self, key: str) -> str | None:
        return self.values[key][0] if self._alive(key) else None

    def delete(self, key: str) -> bool:
        alive = self._alive(key)
        self.values.pop(key, None)
        return alive

    def delete_prefix(self, prefix: str) -> int:
        doomed = [key for key in self.values if key.startswith(prefix)]
        alive = sum(self._alive(key) for key in doomed)
        for key in doomed:
            del self.values[key]
        return alive

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.values if k.startswith(prefix) and self._alive(k))

    def append(self, stream: str, record: str, max_len: int) -> None:
        records = [*self.streams.get(stream, []), record]
        self.streams[stream] = records[-max_len:]

    def tail(self, stream: str, limit: int) -> list[str]:
        return list(reversed(self.streams.get(stream, [])))[:limit]


class TestAgainstModel:
    @settings(max_examples=150, deadline=None)
    @given(operations=_operations)
    def test_backends_match_the_dict_model(
        self, shared_sqlite: SharedSQLite, operations: list[tuple[Any, ...]]
    ) -> None:
        """Any sequence of operations gives the same results on both backends and the model.

        The SQLite file is shared between examples: its keys are cleared at the start of
        each, and each example's streams get a fresh name. Keys therefore also cross the
        store's periodic purge of expired rows now and then.
        """
        clock, sqlite = shared_sqlite.clock, shared_sqlite.store
        sqlite.delete_prefix("")
        run = next(shared_sqlite.runs)
        memory = MemoryStore(clock)
        model = DictModel(clock)
        try:
            for step, (name, *args) in enumerate(operations):
                if name == "advance":
                    clock.advance(args[0])
                    continue
                if name in {"append", "tail"}:
                    args[0] = f"run {run}: {args[0]}"
                expected = getattr(model, name)(*args)
                for backend in (memory, sqlite):
                    got = getattr(backend, name)(*args)
                    assert got == expected, (step, name, args, type(backend).__name__)
            for backend in (memory, sqlite):
                assert backend.keys("") == model.keys("")
        finally:
            memory.close()
