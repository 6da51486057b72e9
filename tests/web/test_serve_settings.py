"""The ``serve.*`` settings: read from TOML and the environment, malformed values named
at start-up, secrets masked; and where a login may send the browser next.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone._exceptions import ConfigError
from chaperone._secrets import MASKER
from chaperone.config import Role, Settings, load_settings
from chaperone.web._login import safe_next
from chaperone.web._passwords import hash_password

HASH = hash_password("pw-for-settings-1")


def load(folder: Path, toml: str = "", **environ: str) -> Settings:
    """Settings from ``toml`` in ``folder`` and ``environ``."""
    (folder / "chaperone.toml").write_text(toml, encoding="utf-8")
    return load_settings(environ, folder)


def problems(folder: Path, toml: str = "", **environ: str) -> str:
    """The text of the ConfigError loading raises."""
    with pytest.raises(ConfigError) as caught:
        load(folder, toml, **environ)
    return str(caught.value)


class TestReading:
    """Each setting from where it is given."""

    def test_defaults(self, tmp_path: Path) -> None:
        """Nothing configured: /chaperone, 10 s and 5 s, 1000 connections, 16 KiB,
        loopback proxies, viewers, no users.
        """
        serve = load_settings({}, tmp_path).serve
        assert (serve.prefix, serve.request_timeout, serve.idle_timeout) == ("/chaperone", 10, 5)
        assert (serve.max_connections, serve.max_request_head) == (1000, 16384)
        assert serve.proxy_role == Role.VIEWER
        assert serve.users == ()
        assert not serve.authentication_configured

    def test_toml_and_environment(self, tmp_path: Path) -> None:
        """Users, ping keys and proxies from TOML; scalars from the environment, which
        wins; every secret is masked.
        """
        toml = f"""
[serve]
prefix = "/ops/chaperone/"
trusted_proxies = ["10.0.0.0/8", "::1"]
[[serve.users]]
name = "ann"
password_hash = "{HASH}"
role = "responder"
[serve.ping_keys]
"nightly.report" = "job-key-for-settings"
"""
        settings = load(
            tmp_path,
            toml,
            CHAPERONE_SERVE_REQUEST_TIMEOUT="2",
            CHAPERONE_SERVE_SESSION_SECRET="session-for-settings",  # noqa: S106 - a test secret
            CHAPERONE_SERVE_PROXY_ROLE="Responder",
            CHAPERONE_SERVE_TRUSTED_HEADER="X-Forwarded-User",
        )
        serve = settings.serve
        assert serve.prefix == "/ops/chaperone"
        assert serve.request_timeout == 2
        assert serve.trusted_proxies == (
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("::1/128"),
        )
        assert [(user.name, user.role) for user in serve.users] == [("ann", Role.RESPONDER)]
        assert serve.ping_keys == {"nightly.report": "job-key-for-settings"}
        assert serve.proxy_role == Role.RESPONDER
        assert serve.authentication_configured
        for secret in (HASH, "job-key-for-settings", "session-for-settings"):
            assert secret not in MASKER.mask(f"a {secret} b")
        assert HASH not in repr(serve)


class TestMalformed:
    """A malformed value fails at start-up, naming the setting and where it came from."""

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("CHAPERONE_SERVE_PREFIX", "chaperone"),
            ("CHAPERONE_SERVE_PREFIX", "/a b"),
            ("CHAPERONE_SERVE_REQUEST_TIMEOUT", "0"),
            ("CHAPERONE_SERVE_IDLE_TIMEOUT", "soon"),
            ("CHAPERONE_SERVE_MAX_CONNECTIONS", "0"),
            ("CHAPERONE_SERVE_MAX_REQUEST_HEAD", "100"),
            ("CHAPERONE_SERVE_TRUSTED_PROXIES", "10.0.0.0/8, nowhere"),
            ("CHAPERONE_SERVE_PROXY_ROLE", "admin"),
            ("CHAPERONE_SERVE_SECURE_COOKIES", "maybe"),
        ],
    )
    def test_scalar(self, tmp_path: Path, variable: str, value: str) -> None:
        """Each malformed scalar names its variable."""
        assert variable in problems(tmp_path, **{variable: value})

    @pytest.mark.parametrize(
        ("entry", "key"),
        [
            ('name = "ann"\npassword_hash = "plain-text-pw"', "serve.users[0].password_hash"),
            (f'password_hash = "{HASH}"', "serve.users[0].name"),
            (f'name = "ann"\npassword_hash = "{HASH}"\nrole = "root"', "serve.users[0].role"),
            (f'name = "ann"\npassword_hash = "{HASH}"\npasword = "x"', "serve.users[0].pasword"),
        ],
    )
    def test_user(self, tmp_path: Path, entry: str, key: str) -> None:
        """A user without a hash made by hash-password, a name or a known role, or with
        an unknown key: named; the bad hash is not quoted.
        """
        text = problems(tmp_path, f"[[serve.users]]\n{entry}\n")
        assert key in text
        assert "plain-text-pw" not in text

    def test_two_users_of_one_name(self, tmp_path: Path) -> None:
        """Two entries named alike: the second is named."""
        entry = f'[[serve.users]]\nname = "ann"\npassword_hash = "{HASH}"\n'
        assert "serve.users[1].name" in problems(tmp_path, entry * 2)

    def test_ping_key_not_text(self, tmp_path: Path) -> None:
        """A job's ping key that is not text is named, without its value."""
        text = problems(tmp_path, '[serve.ping_keys]\n"nightly" = 12345678\n')
        assert "serve.ping_keys.nightly" in text
        assert "12345678" not in text


class TestNext:
    """Where the login sends the browser: only a path inside the app."""

    @given(st.text(max_size=60))
    def test_never_leaves_the_app(self, value: str) -> None:
        """Whatever ``next`` says, the answer is a path under the prefix, on this site."""
        target = safe_next("/chaperone", value)
        assert target.startswith("/chaperone/")
        assert not target.startswith("//")
        assert "\\" not in target
        assert all(ord(char) >= 32 for char in target)

    @pytest.mark.parametrize("value", ["/chaperone/jobs/1?x=1", "/chaperone/"])
    def test_keeps_a_path_inside(self, value: str) -> None:
        """A path inside the app is kept as it is."""
        assert safe_next("/chaperone", value) == value
