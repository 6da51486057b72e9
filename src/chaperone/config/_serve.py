"""``[serve]``: how ``chaperone serve`` listens, protects itself and tells people apart.

The scalar settings are read through :data:`~chaperone.config._loading.SETTING_SPECS`
(each with its ``CHAPERONE_SERVE_*`` variable); the tables (``[[serve.users]]``,
``[serve.ping_keys]``) and the list ``serve.trusted_proxies`` only from the TOML file.
Every secret read here (password hashes, the session secret, ping keys) is added to
:data:`~chaperone._secrets.MASKER`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from chaperone._exceptions import ConfigProblem
from chaperone._secrets import MASKER
from chaperone.config._parsing import describe_kind, parse_choice
from chaperone.config._settings import IPNetwork, Role, UserEntry

__all__ = [
    "parse_ping_keys",
    "parse_prefix",
    "parse_role",
    "parse_trusted_proxies",
    "parse_users",
]

_PREFIX = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")
_ROLES = parse_choice(*(role.value for role in Role))
_HASH = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[0-9a-f]+\$[0-9a-f]+$")


def parse_prefix(value: Any) -> str:
    """A path prefix: "" or "/a/b", without a trailing slash."""
    if not isinstance(value, str):
        raise ValueError(f"expected a path such as /chaperone, got {describe_kind(value)}")
    prefix = value.strip().rstrip("/")
    if not _PREFIX.match(prefix):
        raise ValueError(f"expected a path such as /chaperone, got {value!r}")
    return prefix


def parse_role(value: Any) -> Role:
    """``viewer`` or ``responder``."""
    return Role(_ROLES(value))


def parse_trusted_proxies(value: Any) -> tuple[IPNetwork, ...]:
    """A list of addresses or CIDR networks (a single text is split on commas)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"expected a list of addresses, got {describe_kind(value)}")
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"expected an address or network, got {item!r}") from None
    return tuple(networks)


def parse_users(value: Any, source: str, problems: list[ConfigProblem]) -> tuple[UserEntry, ...]:
    """Read ``[[serve.users]]``: unique names, scrypt hashes, roles."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        problems.append(ConfigProblem("serve.users", source, "expected [[serve.users]] tables"))
        return ()
    users: list[UserEntry] = []
    for index, entry in enumerate(value):
        where = f"serve.users[{index}]"
        found = _user(entry, where, source, problems)
        if found is None:
            continue
        if any(user.name == found.name for user in users):
            problems.append(ConfigProblem(f"{where}.name", source, "another user has this name"))
            continue
        users.append(found)
    return tuple(users)


def _user(
    entry: Mapping[str, Any], where: str, source: str, problems: list[ConfigProblem]
) -> UserEntry | None:
    for key in entry:
        if key not in ("name", "password_hash", "role"):
            problems.append(ConfigProblem(f"{where}.{key}", source, "unknown setting"))
    raw_name, raw_hash = entry.get("name"), entry.get("password_hash")
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    hashed = raw_hash.strip() if isinstance(raw_hash, str) else ""
    if hashed:
        MASKER.add(hashed)
    role = Role.VIEWER
    found = len(problems)
    if not name:
        problems.append(ConfigProblem(f"{where}.name", source, "expected a user name"))
    if not _HASH.match(hashed):
        message = "expected a hash made by `chaperone serve hash-password` (scrypt$...)"
        problems.append(ConfigProblem(f"{where}.password_hash", source, message))
    try:
        role = parse_role(entry.get("role", "viewer"))
    except ValueError as exc:
        problems.append(ConfigProblem(f"{where}.role", source, str(exc)))
    if len(problems) > found:
        return None
    return UserEntry(name=name, password_hash=hashed, role=role)


def parse_ping_keys(value: Any, source: str, problems: list[ConfigProblem]) -> dict[str, str]:
    """Read ``[serve.ping_keys]``: job name → key (each a secret)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(ConfigProblem("serve.ping_keys", source, "expected a table"))
        return {}
    keys: dict[str, str] = {}
    for job, key in value.items():
        if not isinstance(key, str) or not key.strip():
            message = f"expected a key as text, got {describe_kind(key)}"
            problems.append(ConfigProblem(f"serve.ping_keys.{job}", source, message))
            continue
        MASKER.add(key.strip())
        keys[str(job)] = key.strip()
    return keys
