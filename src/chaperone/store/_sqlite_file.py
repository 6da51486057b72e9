"""The SQLite store's file on disk: which file a connection is on, and the files beside it.

A connection keeps using the file it opened even after that file is deleted or another
is moved to its path, while processes that open the path later use the new one: two
processes silently on two files. :func:`file_identity` (device and inode) lets the store
notice.

In WAL mode SQLite keeps two files beside the database, ``PATH-wal`` and ``PATH-shm``,
and finds them by name. When the database is deleted or replaced they stay behind, and
SQLite reads them as the new file's: a new database at the path then shows the old one's
tables, or the shared-memory index of the old file makes readers of the new one fail
("disk I/O error") or see wrong rows. :func:`remove_stale_sidecars` removes them before
that can happen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import attrs
import structlog

from chaperone._exceptions import StoreError

__all__ = [
    "SIDECAR_SUFFIXES",
    "FileIdentity",
    "file_identity",
    "remove_stale_sidecars",
    "sidecar_identities",
]

_log = structlog.get_logger("chaperone.store")

SIDECAR_SUFFIXES: Final = ("-wal", "-shm")
"""The files SQLite keeps beside a database in WAL mode."""


@attrs.frozen
class FileIdentity:
    """What tells one file from another at the same path: its device and inode."""

    device: int
    inode: int


def file_identity(path: Path) -> FileIdentity | None:
    """The identity of the file at ``path``, or None when there is none (or it cannot be
    read: a path the process cannot see is as good as gone).
    """
    try:
        found = os.stat(path)
    except OSError:
        return None
    return FileIdentity(found.st_dev, found.st_ino)


def sidecar_identities(path: Path) -> dict[str, FileIdentity]:
    """The identities of the ``-wal`` and ``-shm`` files beside ``path`` that exist."""
    found = {suffix: file_identity(_beside(path, suffix)) for suffix in SIDECAR_SUFFIXES}
    return {suffix: identity for suffix, identity in found.items() if identity is not None}


def remove_stale_sidecars(path: Path, ours: Mapping[str, FileIdentity] | None = None) -> None:
    """Remove the ``-wal`` and ``-shm`` files beside ``path`` that belong to no database
    there: every one while the database file is missing or empty (SQLite writes a WAL
    database's first page before it creates them), and those whose identity is in ``ours``
    (recorded when this process opened a database at ``path`` that has since been
    replaced; compare while that database is still open, so their inodes cannot have been
    reused). Raises StoreError naming a file that must go but cannot be removed.
    """
    ours = ours or {}
    for suffix in SIDECAR_SUFFIXES:
        sidecar = _beside(path, suffix)
        identity = file_identity(sidecar)
        if identity is None:
            continue
        # Checked again for each file, just before removing it: the narrower the gap,
        # the less likely another process created a live one at the path meanwhile.
        if ours.get(suffix) != identity and not _missing_or_empty(path):
            continue
        try:
            sidecar.unlink()
        except FileNotFoundError:
            continue  # another process removed it first
        except OSError as exc:
            raise StoreError(
                f"cannot remove {sidecar}, left behind by a SQLite store that was deleted "
                f"or replaced (SQLite would read it as part of {path}): {exc}"
            ) from exc
        _log.warning(
            "removed a file left behind by a SQLite store that was deleted or replaced",
            file=str(sidecar),
        )


def _missing_or_empty(path: Path) -> bool:
    try:
        return os.stat(path).st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False  # cannot tell: leave the files alone


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)
