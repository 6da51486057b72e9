"""The web app's secrets never show: the real ``chaperone serve`` with a configuration
holding a token, users' password hashes, a session secret and ping keys, used at debug
level by a browser-like client and a script; and ``chaperone serve hash-password``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from chaperone.web._passwords import hash_password, verify_password
from helpers.cli import CHAPERONE, clean_environ, run_cli
from helpers.serve import serving

TOKEN = "tok-secret-60d9b3e1a7"  # noqa: S105 - a test token
PASSWORD = "pw-secret-2f8c4a9b"  # noqa: S105 - a test password
SESSION_SECRET = "session-secret-b51e07c3"  # noqa: S105 - a test secret
PING_KEY = "ping-secret-93a1f6d2"
JOB_KEY = "job-secret-7e2b9c40"
HASH = hash_password(PASSWORD)


def write_config(folder: Path) -> None:
    """A chaperone.toml with every kind of web secret."""
    (folder / "chaperone.toml").write_text(
        f"""
[serve]
session_secret = "{SESSION_SECRET}"
ping_key = "{PING_KEY}"

[[serve.users]]
name = "ann"
password_hash = "{HASH}"
role = "responder"

[serve.ping_keys]
"nightly.report" = "{JOB_KEY}"
""",
        encoding="utf-8",
    )


SECRETS = (TOKEN, PASSWORD, SESSION_SECRET, PING_KEY, JOB_KEY, HASH, HASH.split("$")[-1])


class TestNeverShown:
    """No secret in a page, its source, a header, the log or the CLI's output."""

    def test_serve_and_config_never_show_a_secret(self, tmp_path: Path) -> None:
        """Login (wrong, then right), pages, health with the token in a header and by
        mistake in the query, pings with keys: none of the secrets appears in any answer
        or in what ``serve`` and ``chaperone config`` printed.
        """
        write_config(tmp_path)
        env = clean_environ(
            tmp_path,
            CHAPERONE_SERVE_TOKEN=TOKEN,
            CHAPERONE_LOG_LEVEL="debug",
            CHAPERONE_HEALTH_REQUIRE_MONITOR="false",
        )
        answers: list[httpx.Response] = []
        with serving(env, tmp_path) as served, httpx.Client(timeout=10) as client:
            base = f"{served.url}/chaperone"
            form = client.get(f"{base}/login", headers={"Accept": "text/html"})
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            # a wrong password; the password typed in the name field; the right one
            for name, password in (("ann", PASSWORD + "x"), (PASSWORD, "x"), ("ann", PASSWORD)):
                answers.append(
                    client.post(
                        f"{base}/login",
                        data={"name": name, "password": password, "csrf_token": csrf[1]},
                    )
                )
            answers.append(client.get(f"{base}/", headers={"Accept": "text/html"}))
            answers.append(client.get(f"{served.url}/health", params={"token": TOKEN}))
            answers.append(
                client.get(f"{served.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            )
            answers.append(client.post(f"{base}/ping/nightly.report", params={"key": JOB_KEY}))
            answers.append(
                client.post(f"{base}/ping/x", headers={"X-Chaperone-Ping-Key": PING_KEY})
            )
            served.stop()
        config = run_cli("config", "show", cwd=tmp_path, env=env)
        assert config.returncode == 0, str(config)
        assert [answer.status_code for answer in answers[:5]] == [401, 401, 303, 200, 401]
        assert 'class="user">ann' in answers[3].text
        shown = [
            served.stdout,
            served.stderr,
            config.stdout,
            config.stderr,
            *(answer.text for answer in answers),
            *(str(answer.headers) for answer in answers),
        ]
        for secret in SECRETS:
            assert not any(secret in text for text in shown), secret
        assert "serve.session_secret" in config.stdout
        assert '"path": "/health?token=' in served.stderr  # the request was logged, masked


class TestHashPassword:
    """``chaperone serve hash-password`` and the hashes it makes."""

    def test_command_prints_a_hash_that_verifies(self, tmp_path: Path) -> None:
        """The password from standard input: one line, a scrypt hash that verifies it
        and no other, without the password in it.
        """
        result = subprocess.run(
            [str(CHAPERONE), "serve", "hash-password"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=clean_environ(tmp_path),
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        printed = result.stdout.strip()
        assert printed.startswith("scrypt$16384$8$1$")
        assert PASSWORD not in result.stdout + result.stderr
        assert verify_password(PASSWORD, printed)
        assert not verify_password(PASSWORD + "x", printed)

    def test_salted_and_malformed_hashes(self) -> None:
        """Two hashes of one password differ; a malformed or costly hash matches
        nothing; an unknown user (None) matches nothing.
        """
        assert hash_password(PASSWORD) != hash_password(PASSWORD)
        for bad in ("", "scrypt$x", "md5$1$1$1$00$00", f"scrypt${2**30}$8$1$00$00", HASH + "0"):
            assert not verify_password(PASSWORD, bad)
        assert not verify_password(PASSWORD, None)
