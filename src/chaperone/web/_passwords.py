"""Password hashes for ``[[serve.users]]``: scrypt from the standard library, in a string
that names its own parameters (``scrypt$n$r$p$salt$hash``), checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

__all__ = ["hash_password", "verify_password"]

_N: Final = 2**14
_R: Final = 8
_P: Final = 1
_MAX_N: Final = 2**20
"""The largest cost accepted from a configured hash (a bigger one would stall a login)."""
_KEY_BYTES: Final = 32
_SALT_BYTES: Final = 16
_MAX_MEMORY: Final = 1024 * 1024 * 1024
_DUMMY: Final = f"scrypt${_N}${_R}${_P}${'00' * _SALT_BYTES}${'00' * _KEY_BYTES}"
"""Checked against when the user is unknown, so the answer takes as long either way."""


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogateescape"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_MAX_MEMORY,
        dklen=_KEY_BYTES,
    )


def hash_password(password: str) -> str:
    """A new salted hash of ``password``, for ``password_hash`` in ``[[serve.users]]``."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _derive(password, salt, _N, _R, _P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, hashed: str | None) -> bool:
    """Whether ``password`` matches ``hashed`` (None: no such user, checked against a
    dummy so the time taken says nothing). A malformed hash matches nothing.
    """
    try:
        scheme, n, r, p, salt, key = (hashed or _DUMMY).split("$")
        cost = (int(n), int(r), int(p))
        if scheme != "scrypt" or not 1 < cost[0] <= _MAX_N:
            return False
        derived = _derive(password, bytes.fromhex(salt), *cost)
    except ValueError:
        return False
    return hmac.compare_digest(derived.hex(), key) and hashed is not None
