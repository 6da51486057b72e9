"""Property: an outage split into any sequence of operations leaves the primary, once it is
back and caught up, as one healthy store would have been left by the same operations.

One run: operations while up, the primary fails, operations while degraded (sometimes a
probe whose catching up fails half-way, then more operations), the primary comes back and
a probe catches up, then operations while up again. A healthy MemoryStore, the reference,
gets the same operations, except what the rules of ResilientStore make different on
purpose:

- answers given while degraded come from the shadow, so only the state is compared
  (every answer while up, before and after, is compared too);
- a pop while degraded takes the oldest records pushed during the outage, not the
  primary's: the reference gets, at recovery, the records pushed during the outage that
  no pop returned, after its own;
- no key expires during the outage while its value depends on the primary's (a counter,
  a claim): the rules carry those by their final state (documented in
  chaperone.store._journal), so counter and claim keys ("n:", "c:") get only TTLs that
  outlast a run, and the keys that do expire ("s:") are only set and deleted.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone._clock import ManualClock
from chaperone.store import MemoryStore, ResilientStore, StoreState
from chaperone.store import _resilient as resilient_module
from helpers.stores import SwitchedStore

_EXPIRING = st.sampled_from(["s:a", "s:b", "s:c"])
_LASTING = st.sampled_from(["n:a", "n:b", "c:a", "c:b"])
_CLAIMED = st.sampled_from(["c:a", "c:b"])
_ANY_KEY = _EXPIRING | _LASTING
_NUMBER = st.sampled_from(["0", "3", "17"])
_SHORT_TTL = st.sampled_from([None, 0.5, 1.0, 2.5, 1000.0])
_LONG_TTL = st.sampled_from([None, 1000.0])
_STREAMS = st.sampled_from(["x", "y"])
_INDEXES = st.sampled_from(["d1", "d2"])
_MEMBERS = st.sampled_from(["m1", "m2", "m3"])
_QUEUES = st.sampled_from(["q1", "q2"])

_operation = st.one_of(
    st.tuples(st.just("set"), _EXPIRING, _NUMBER, _SHORT_TTL),
    st.tuples(st.just("set"), _LASTING, _NUMBER, _LONG_TTL),
    st.tuples(st.just("delete"), _ANY_KEY),
    st.tuples(st.just("incr"), _LASTING, st.integers(-3, 5), _LONG_TTL),
    st.tuples(st.just("set_if_absent"), _CLAIMED, _NUMBER, st.just(1000.0)),
    st.tuples(st.just("delete_prefix"), st.sampled_from(["", "n:", "c:", "s:", "s:a", "t"])),
    st.tuples(st.just("get"), _ANY_KEY),
    st.tuples(st.just("keys"), st.sampled_from(["", "n:", "s:"])),
    st.tuples(st.just("get_many"), st.lists(_ANY_KEY, max_size=3)),
    st.tuples(st.just("append"), _STREAMS, st.integers(1, 4)),
    st.tuples(st.just("tail"), _STREAMS, st.integers(0, 5)),
    st.tuples(st.just("schedule"), _INDEXES, _MEMBERS, st.sampled_from([1.0, 2.0, 5.0])),
    st.tuples(st.just("unschedule"), _INDEXES, _MEMBERS),
    st.tuples(st.just("due"), _INDEXES, st.sampled_from([0.0, 2.0, math.inf]), st.integers(0, 3)),
    st.tuples(st.just("push"), _QUEUES),
    st.tuples(st.just("pop"), _QUEUES, st.integers(0, 3)),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
)
_operations = st.lists(_operation, max_size=25)


class Run:
    """The store under test, its primary, the reference, and the records pushed while
    degraded (the rule for queues)."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.primary = SwitchedStore(MemoryStore(self.clock, "memory://primary"))
        self.store = ResilientStore("memory://primary", self.clock, lambda: self.primary)
        self.reference = MemoryStore(self.clock, "memory://reference")
        self.numbers = itertools.count()
        self.pushed_while_degraded: dict[str, list[str]] = defaultdict(list)
        self.popped_while_degraded: set[str] = set()

    def close(self) -> None:
        self.store.close()
        self.primary.inner.close()
        self.reference.close()

    def apply(self, operations: list[tuple[Any, ...]], *, degraded: bool) -> None:
        """Apply each operation to the store and the reference; compare answers while up."""
        for step, (name, *args) in enumerate(operations):
            if name == "advance":
                self.clock.advance(args[0])
                continue
            if name in {"append", "push"}:
                args = [args[0], f"r{next(self.numbers)}", *args[1:]]  # records told apart
            got = getattr(self.store, name)(*args)
            if not degraded:
                assert got == getattr(self.reference, name)(*args), (step, name, args)
            elif name == "push":
                self.pushed_while_degraded[args[0]].append(args[1])
            elif name == "pop":
                self.popped_while_degraded.update(got)
            elif name not in {"get", "keys", "get_many", "tail", "due"}:
                getattr(self.reference, name)(*args)
            assert self.store.state is (StoreState.DEGRADED if degraded else StoreState.UP)

    def recovered(self) -> None:
        """The queue rule: what the outage pushed and did not pop joins the reference's."""
        for queue, records in self.pushed_while_degraded.items():
            for record in records:
                if record not in self.popped_while_degraded:
                    self.reference.push(queue, record)

    def assert_same_state(self) -> None:
        """The primary holds what the reference holds: keys with values and expiry times,
        streams, deadlines and (read last, since reading empties them) queues."""
        primary = self.primary.inner
        for store in (primary, self.reference):
            assert store.keys("") == self.reference.keys("")
        for key in self.reference.keys(""):
            value, expires_at = primary.entry(key) or ("", None)
            assert (value, expires_at) == pytest.approx(self.reference.entry(key), abs=1e-6), key
        for stream in ("x", "y"):
            assert primary.tail(stream, 10) == self.reference.tail(stream, 10)
        for index in ("d1", "d2"):
            assert primary.due(index, math.inf, 10) == self.reference.due(index, math.inf, 10)
        for queue in ("q1", "q2"):
            assert primary.pop(queue, 1000) == self.reference.pop(queue, 1000)


class TestOutageProperty:
    @settings(max_examples=300, deadline=None)
    @given(
        before=_operations,
        during=_operations,
        half_way=st.none() | st.integers(0, 12),
        later=_operations,
        after=_operations,
        part=st.sampled_from([1, 3, 100]),
    )
    def test_the_primary_ends_as_one_healthy_store(
        self,
        before: list[tuple[Any, ...]],
        during: list[tuple[Any, ...]],
        half_way: int | None,
        later: list[tuple[Any, ...]],
        after: list[tuple[Any, ...]],
        part: int,
    ) -> None:
        """Whatever the operations and wherever the outage (and a failed catching up)
        falls, and however many parts the catching up takes, the caught-up primary equals
        a store that never failed, and answers alike."""
        run = Run()
        try:
            with patch.object(resilient_module, "CARRY_PART", part):
                run.apply(before, degraded=False)
                run.primary.away = True
                run.store.get("s:a")  # the operation that finds the primary away
                run.apply(during, degraded=True)
                if half_way is not None:
                    run.primary.away = False
                    run.primary.budget = 3 + half_way  # the probe's three calls, then items
                    if not run.store.probe():
                        run.apply(later, degraded=True)
                run.primary.away, run.primary.budget = False, None
                assert run.store.probe()
            run.recovered()
            run.apply(after, degraded=False)
            run.assert_same_state()
            run.clock.advance(2000)  # past every TTL: expiry agrees too
            run.assert_same_state()
        finally:
            run.close()
