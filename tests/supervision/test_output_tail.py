"""The bounded tail of a command's output (:class:`OutputTail`) and the text cut that
keeps a text's end (:func:`chaperone._sanitize.tail`): property tests over any bytes and
any text, in any chunks.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import _sanitize
from chaperone.supervision._output_tail import TAIL_BYTES, OutputTail
from chaperone.testing.strategies import texts

chunks = st.lists(st.binary(max_size=300), max_size=40)
sizes = st.integers(min_value=1, max_value=600)


class TestOutputTail:
    """What the buffer keeps of what was written to it."""

    @given(written=chunks, size=sizes)
    def test_it_is_always_the_last_bytes_written(self, written: list[bytes], size: int) -> None:
        """After any writes, the buffer holds the last ``size`` bytes of all of them, in
        order, and its text is those bytes decoded with errors replaced."""
        tail = OutputTail(size)
        for chunk in written:
            tail.write(chunk)
        everything = b"".join(written)
        assert tail.data() == everything[-size:]
        assert tail.text() == everything[-size:].decode("utf-8", "replace")
        assert tail.overflowed == (len(everything) > size)

    @given(written=chunks, size=sizes)
    def test_it_never_holds_more_than_its_size(self, written: list[bytes], size: int) -> None:
        """However much is written, the buffer never holds more than its size."""
        tail = OutputTail(size)
        for chunk in written:
            tail.write(chunk)
            assert len(tail.data()) <= size

    @given(
        lines=st.lists(st.text(alphabet="abc xyz", max_size=30), min_size=1, max_size=60),
        size=st.integers(min_value=8, max_value=200),
    )
    def test_the_shown_text_drops_a_line_cut_at_the_start(
        self, lines: list[str], size: int
    ) -> None:
        """Once the start was dropped, the shown text begins after the first line break
        of what is kept (the cut line is never shown), or is the whole when there is none;
        before that, it is all of it."""
        written = "".join(f"{line}\n" for line in lines).encode()
        tail = OutputTail(size)
        tail.write(written)
        kept = written[-size:].decode()
        shown = tail.shown_text()
        if len(written) <= size:
            assert shown == kept
        elif "\n" in kept:
            assert shown == kept[kept.index("\n") + 1 :]
        else:
            assert shown == kept

    def test_writes_from_two_threads_are_all_counted(self) -> None:
        """Two threads writing at once lose nothing of the end: the tail is the size of
        the buffer, and made only of what they wrote."""
        tail = OutputTail(1000)

        def write(byte: bytes) -> None:
            for _ in range(5000):
                tail.write(byte * 7)

        threads = [threading.Thread(target=write, args=(b,)) for b in (b"a", b"b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        data = tail.data()
        assert len(data) == 1000
        assert set(data) <= set(b"ab")

    def test_the_default_size_is_sixteen_kib(self) -> None:
        """The default buffer keeps 16 KiB, enough that 2,000 shown characters of four
        bytes each lie far from its start."""
        assert OutputTail().size == TAIL_BYTES == 16 * 1024
        assert TAIL_BYTES // 4 >= 2 * 2_000

    def test_a_size_below_one_is_refused(self) -> None:
        """A buffer of no bytes is a programming error."""
        with pytest.raises(ValueError, match="1 or more"):
            OutputTail(0)


class TestTailText:
    """``_sanitize.tail``: multi-line text, its end kept."""

    @given(value=texts(), limit=st.integers(min_value=40, max_value=5000))
    def test_bounded_clean_and_ending_like_the_text(self, value: str, limit: int) -> None:
        """The result is at most ``limit`` characters, clean, idempotent, and ends with as
        much of the cleaned text's end as fits beside the marker (all of it when it fits),
        for any limit with room for the marker."""
        cleaned = _sanitize.clean_text(value)
        result = _sanitize.tail(value, limit)
        assert len(result) <= limit
        assert _sanitize.clean_text(result) == result
        assert _sanitize.tail(result, limit) == result
        if len(cleaned) <= limit:
            assert result == cleaned
        else:
            marker, _, kept = result.partition("\n")
            assert marker.startswith("…")
            assert cleaned.endswith(kept)
            removed = len(cleaned) - len(kept)
            assert marker == f"… [{removed:,} {'character' if removed == 1 else 'characters'} cut]"

    def test_the_marker_counts_what_was_cut(self) -> None:
        """A long text keeps its end after a line saying how much of its start was cut."""
        result = _sanitize.tail("x" * 9000 + "the end", 100)
        assert result.endswith("the end")
        removed = 9007 - (100 - len("… [8,932 characters cut]\n"))
        assert result.startswith(f"… [{removed:,} characters cut]\n")
        assert len(result) == 100
