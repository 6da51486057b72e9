r"""The one place outside text is made safe: valid, printable, bounded.

Text reaches Chaperone from job names, errors, metadata, plugins and services, and goes
on to terminals, JSON in the store, and every channel. Each boundary where it enters and
is kept (the alert, the job record, the event queue, the history) passes it through here:

- **valid**: a lone surrogate (a non-UTF-8 byte read by Python as ``'\udcff'``) becomes
  U+FFFD, a surrogate pair the character it stands for, and bytes are decoded as UTF-8
  with U+FFFD for what is not UTF-8; so every result encodes to UTF-8 and JSON;
- **printable**: terminal escape sequences (CSI such as ``ESC [ 2 J``; OSC, DCS, SOS, PM
  and APC strings up to their terminator, such as an OSC 8 hyperlink; the short ``ESC x``
  forms) are removed whole, then every other C0 and C1 control character (NUL, ``ESC``,
  ``\r``, ``DEL``, ``NEL``, ...) and the bidirectional embeddings, overrides and isolates
  (U+202A-U+202E, U+2066-U+2069), which can make a console line read otherwise than it
  is. A one-line text (a title, a name, a key) turns tabs and line breaks (``\n``, U+2028,
  U+2029) into spaces; a multi-line text (a summary, an error) keeps ``\n`` and ``\t``
  (``\r\n`` becomes ``\n``);
- **bounded**: each text is capped, and an alert's fields and labels in number and in
  total; what is cut is replaced by a visible marker saying how much (``… [12,345
  characters cut]``), the marker counted within the cap.

Every function here is idempotent (its output passes through unchanged), ordinary text
(printable, within its cap) comes through unchanged, and cleaning a multi-line text then
making it one line gives what making it one line at once does.

The limits, in characters (code points):

- :data:`LINE_LIMIT` 1,000 for one-line text: longer than any service shows of a title
  (Discord 256, Slack 256, PagerDuty's summary 1,024 with the marker's room, Opsgenie's
  message 130), so only names nobody could read whole are cut;
- :data:`NAME_LIMIT` 200 for the name of a field or label (a word or two on any service);
- :data:`TEXT_LIMIT` 4,000 for multi-line text: a Python traceback of about fifty
  lines, the most any service shows of one text (Discord's description 4,096, a Slack
  section 3,000);
- :data:`URL_LIMIT` 4,096 for a link; a longer one is left out rather than cut, since a
  cut URL leads nowhere (every channel leaves out long links too);
- :data:`MAX_FIELDS` 100 fields of :data:`FIELDS_LIMIT` 16,000 characters together
  (names and values): more than any service shows (Slack 20 fields, mail 40, Discord 25
  an embed and 6,000 characters a message), room for four full tracebacks;
- :data:`MAX_LABELS` 50 labels of :data:`LABELS_LIMIT` 4,000 characters together.

So an alert holds at most :data:`ALERT_LIMIT` characters (about 42,000: 170 KB of UTF-8
at the very worst), whatever it was given: one history record and one outbox entry stay
that small, and ``chaperone history`` prints at most that much a record.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

__all__ = [
    "ALERT_LIMIT",
    "CUT_NAME",
    "FIELDS_LIMIT",
    "LABELS_LIMIT",
    "LINE_LIMIT",
    "MAX_FIELDS",
    "MAX_LABELS",
    "NAME_LIMIT",
    "TEXT_LIMIT",
    "URL_LIMIT",
    "clean_line",
    "clean_text",
    "cut",
    "data",
    "dumps",
    "fields",
    "identity",
    "labels",
    "line",
    "optional_identity",
    "optional_line",
    "optional_tail",
    "optional_text",
    "tail",
    "text",
    "url",
]

LINE_LIMIT: Final = 1_000
"""Characters of one-line text: a title, a key, a job's name."""
NAME_LIMIT: Final = 200
"""Characters of the name of a field or a label."""
TEXT_LIMIT: Final = 4_000
"""Characters of multi-line text: a summary, an explanation, a field's value, an error."""
URL_LIMIT: Final = 4_096
"""Characters of a link; a longer one is left out."""
MAX_FIELDS: Final = 100
"""Fields of one alert, the marker field included."""
FIELDS_LIMIT: Final = 16_000
"""Characters of one alert's fields, names and values together."""
MAX_LABELS: Final = 50
"""Labels of one alert, the marker label included."""
LABELS_LIMIT: Final = 4_000
"""Characters of one alert's labels, names and values together."""
ALERT_LIMIT: Final = 6 * LINE_LIMIT + 2 * TEXT_LIMIT + FIELDS_LIMIT + LABELS_LIMIT + 2 * URL_LIMIT
"""The most characters of text one alert holds: six one-line texts (key, headline, title,
job class, supervision id, service), two multi-line ones (summary, explanation), its
fields, its labels and two links."""

CUT_NAME: Final = "…"
"""The name of the field (or label) that stands for those cut off the end."""

_WINDOW: Final = 4
"""Of a text more than this many times its cap, only that much of its start is cleaned."""
_WORTH_CUTTING: Final = 100
"""A field's value is cut to fit the room left when at least this much is left; with less,
it is left out with the rest."""
_MARKER_ROOM: Final = 80
"""Room kept for the marker field (or label) when some are cut."""

_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_SURROGATE_PAIR: Final = re.compile(r"[\ud800-\udbff][\udc00-\udfff]")
_SEQUENCE: Final = re.compile(
    # OSC, DCS, SOS, PM and APC strings (ESC ], P, X, ^, _ or their C1 forms) up to their
    # terminator (BEL, ESC \ or ST); unterminated, only the introducer goes (below). The
    # body stops at the next introducer too, so a text of introducers is scanned once.
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\x90\x98\x9d\x9e\x9f]*(?:\x07|\x1b\\|\x9c)"
    # CSI: ESC [ (or its C1 form), parameter bytes, intermediate bytes, a final byte.
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    # Every other escape sequence: ESC, intermediate bytes, a final byte.
    r"|\x1b[ -/]*[0-~]"
)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls and DEL but the tab and the line feed, and the bidirectional
embeddings, overrides and isolates: removed."""
_LINE_BREAK: Final = re.compile(r"[\t\n\u2028\u2029]")
"""What a one-line text turns into a space."""
_UNSAFE_LINE: Final = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""Any character one-line cleaning would change."""
_UNSAFE_TEXT: Final = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""Any character multi-line cleaning would change."""


# -- cleaning ------------------------------------------------------------------------------


def _decoded(value: object) -> str:
    """``value`` as text: bytes decoded as UTF-8 (U+FFFD for what is not), else ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _joined(pair: re.Match[str]) -> str:
    return pair.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def _valid(value: str) -> str:
    """``value`` with each surrogate pair joined into its character and each lone
    surrogate replaced by U+FFFD.
    """
    if not _SURROGATE.search(value):
        return value
    return _SURROGATE.sub("\ufffd", _SURROGATE_PAIR.sub(_joined, value))


def clean_line(value: object) -> str:
    """``value`` as valid one-line text: escape sequences and control characters removed,
    tabs and line breaks turned into spaces; not capped.
    """
    value = _decoded(value)
    if not _UNSAFE_LINE.search(value):
        return value
    value = _SEQUENCE.sub("", _valid(value))
    return _CONTROL.sub("", _LINE_BREAK.sub(" ", value))


def clean_text(value: object) -> str:
    r"""``value`` as valid multi-line text: escape sequences and control characters removed
    but ``\n`` and ``\t`` (``\r\n`` and U+2028, U+2029 become ``\n``); not capped.
    """
    value = _decoded(value)
    if not _UNSAFE_TEXT.search(value):
        return value
    value = _SEQUENCE.sub("", _valid(value))
    value = value.replace("\r\n", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    return _CONTROL.sub("", value)


# -- capping -------------------------------------------------------------------------------


def _marker(removed: int, digest: str = "") -> str:
    unit = "character" if removed == 1 else "characters"
    return f"… [{removed:,} {unit} cut{digest}]"


def _cut(value: str, limit: int, *, beyond: int = 0, digest_of: str | None = None) -> str:
    """``value`` cut to ``limit`` with a marker counting the characters cut, ``beyond``
    more included (those of the original past ``value``), and a digest of ``digest_of``.
    """
    if len(value) <= limit and not beyond:
        return value
    tail = ""
    if digest_of is not None:
        whole = digest_of.encode("utf-8", "surrogatepass")
        tail = ", sha256:" + hashlib.sha256(whole).hexdigest()[:16]
    total = len(value) + beyond
    kept = limit - len(_marker(total, tail))
    # Fewer characters cut may need a shorter count: take the room that frees.
    kept = max(0, limit - len(_marker(total - kept, tail)))
    return (value[:kept] + _marker(total - kept, tail))[:limit]


def cut(value: str, limit: int) -> str:
    """``value`` if it is at most ``limit`` characters, else its start and a marker
    saying how many characters were cut, ``limit`` characters at most in all.
    """
    return _cut(value, limit)


def _capped(value: str, limit: int, clean: Callable[[str], str], *, digest: bool) -> str:
    """``clean(value)`` cut to ``limit``. Of a text far longer than that, only a window
    of its start is cleaned (cleaning only removes, so a window that cleans to more than
    ``limit`` holds all that shows); the rest counts as cut.
    """
    digest_of = value if digest else None
    window = _WINDOW * limit
    if len(value) > window:
        start = clean(value[:window])
        if len(start) > limit:
            return _cut(start, limit, beyond=len(value) - window, digest_of=digest_of)
    return _cut(clean(value), limit, digest_of=digest_of)


def line(value: str, limit: int = LINE_LIMIT) -> str:
    """``value`` as one line of at most ``limit`` characters (see :func:`clean_line`)."""
    return _capped(_decoded(value), limit, clean_line, digest=False)


def text(value: str, limit: int = TEXT_LIMIT) -> str:
    """``value`` as multi-line text of at most ``limit`` characters (see
    :func:`clean_text`).
    """
    return _capped(_decoded(value), limit, clean_text, digest=False)


def tail(value: str, limit: int = TEXT_LIMIT) -> str:
    """``value`` as multi-line text of at most ``limit`` characters, its end kept (a
    command's output, whose last lines say most): when cut, a marker at the start says
    how many characters were cut.
    """
    cleaned = clean_text(value)
    if len(cleaned) <= limit:
        return cleaned
    kept = limit
    while True:  # the marker's room cuts more, which may lengthen its count
        marker = _marker(len(cleaned) - kept) + "\n"
        room = max(0, limit - len(marker))
        if room >= kept:
            break
        kept = room
    return (marker + cleaned[len(cleaned) - kept :])[:limit]


def identity(value: str, limit: int = LINE_LIMIT) -> str:
    """``value`` as one line that still identifies it: when cut, the marker carries a
    SHA-256 prefix of the whole (an alert's key: what rate limits and deduplication
    count), so two long keys with the same start stay two.
    """
    return _capped(_decoded(value), limit, clean_line, digest=True)


def optional_line(value: str | None) -> str | None:
    """:func:`line` of ``value``, None kept."""
    return None if value is None else line(value)


def optional_identity(value: str | None) -> str | None:
    """:func:`identity` of ``value``, None kept."""
    return None if value is None else identity(value)


def optional_text(value: str | None) -> str | None:
    """:func:`text` of ``value``, None kept."""
    return None if value is None else text(value)


def optional_tail(value: str | None) -> str | None:
    """:func:`tail` of ``value``, None kept."""
    return None if value is None else tail(value)


def url(value: str | None) -> str | None:
    """``value`` as a one-line link, or None when it is longer than :data:`URL_LIMIT`
    (a cut link leads nowhere).
    """
    if value is None:
        return None
    cleaned = clean_line(value)
    return cleaned if len(cleaned) <= URL_LIMIT else None


def _bounded(
    pairs: list[tuple[str, str]], count: int, limit: int, noun: str
) -> list[tuple[str, str]]:
    """``pairs`` (each already capped) within ``count`` pairs and ``limit`` characters:
    the first ones whole, the next cut to the room left when that is worth it, and, for
    those left out, a last pair saying how many and how much.
    """
    sizes = [len(name) + len(value) for name, value in pairs]
    total = sum(sizes)
    if len(pairs) <= count and total <= limit:
        return pairs
    kept: list[tuple[str, str]] = []
    room = limit - _MARKER_ROOM
    for (name, value), size in zip(pairs, sizes, strict=True):
        if len(kept) == count - 1:
            break
        if size <= room:
            kept.append((name, value))
            room -= size
            continue
        if room - len(name) >= _WORTH_CUTTING:
            kept.append((name, cut(value, room - len(name))))
        break
    left_out = len(pairs) - len(kept)
    if left_out:
        removed = total - sum(len(name) + len(value) for name, value in kept)
        plural = noun if left_out == 1 else f"{noun}s"
        kept.append((CUT_NAME, f"{left_out:,} more {plural} cut ({removed:,} characters)"))
    return kept


def fields(
    value: Mapping[Any, Any] | Iterable[tuple[Any, Any]], *, limit: int = FIELDS_LIMIT
) -> tuple[tuple[str, str], ...]:
    """An alert's ordered fields, made safe: names one line (:data:`NAME_LIMIT`), values
    multi-line (:data:`TEXT_LIMIT`), at most :data:`MAX_FIELDS` of ``limit`` characters
    together.
    """
    pairs = value.items() if isinstance(value, Mapping) else value
    capped = [(line(_decoded(name), NAME_LIMIT), text(_decoded(item))) for name, item in pairs]
    return tuple(_bounded(capped, MAX_FIELDS, limit, "field"))


def labels(value: Mapping[Any, Any]) -> dict[str, str]:
    """An alert's labels, made safe: names and values one line (:data:`NAME_LIMIT` and
    :data:`LINE_LIMIT`), at most :data:`MAX_LABELS` of :data:`LABELS_LIMIT` characters
    together; a later label whose cleaned name repeats an earlier one replaces it.
    """
    capped = {
        line(_decoded(name), NAME_LIMIT): line(_decoded(item)) for name, item in value.items()
    }
    return dict(_bounded(list(capped.items()), MAX_LABELS, LABELS_LIMIT, "label"))


def data(value: Any) -> Any:
    """JSON-like data (a job's metadata) with every text in it made safe: keys one line
    (:data:`NAME_LIMIT`), text values multi-line (:data:`TEXT_LIMIT`), nested mappings and
    sequences too; other values as they are.
    """
    if isinstance(value, str | bytes | bytearray):
        return text(_decoded(value))
    if isinstance(value, Mapping):
        return {
            line(_decoded(key), NAME_LIMIT) if isinstance(key, str | bytes) else key: data(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [data(item) for item in value]
    return value


def _valid_strings(value: Any) -> Any:
    if isinstance(value, str):
        return _valid(value)
    if isinstance(value, Mapping):
        return {_valid_strings(key): _valid_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_valid_strings(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """``value`` as JSON text that always encodes to UTF-8 (non-ASCII kept as it is, a
    lone surrogate anywhere in it replaced by U+FFFD); other values through ``str``.
    """
    encoded = json.dumps(value, ensure_ascii=False, default=str)
    if not _SURROGATE.search(encoded):
        return encoded
    return json.dumps(_valid_strings(json.loads(encoded)), ensure_ascii=False)
