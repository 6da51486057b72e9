"""Choosing a store by URL, and the default URL."""

from __future__ import annotations

from pathlib import Path

import pytest

import chaperone.store
from chaperone._clock import ManualClock
from chaperone._exceptions import ConfigError, StoreError
from chaperone.store import MemoryStore, SQLiteStore, Store, default_store_url, open_store


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def _open(url: str, clock: ManualClock) -> Store:
    store = open_store(url, clock)
    assert store.url == url
    return store


class TestMemory:
    def test_memory_url(self, clock: ManualClock) -> None:
        """memory:// opens a MemoryStore that keeps the URL and the clock."""
        store = _open("memory://", clock)
        try:
            assert isinstance(store, MemoryStore)
            store.set("k", "v", ttl=1)
            clock.advance(1)
            assert store.get("k") is None
        finally:
            store.close()

    def test_scheme_is_case_insensitive(self, clock: ManualClock) -> None:
        """MEMORY:// is memory:// too."""
        store = open_store("MEMORY://", clock)
        try:
            assert isinstance(store, MemoryStore)
        finally:
            store.close()

    def test_memory_with_a_path_is_refused(self, clock: ManualClock) -> None:
        """memory:// takes no path, so memory://x is a mistake worth reporting."""
        with pytest.raises(ConfigError, match="memory://"):
            open_store("memory://x", clock)


class TestSQLitePaths:
    def test_three_slashes_is_relative_to_cwd(self, in_tmp: Path, clock: ManualClock) -> None:
        """sqlite:///name.db is a file in the current directory."""
        store = _open("sqlite:///data/rel.db", clock)
        try:
            assert isinstance(store, SQLiteStore)
            assert store.path == in_tmp / "data" / "rel.db"
            assert store.path.is_absolute()
        finally:
            store.close()
        assert (in_tmp / "data" / "rel.db").is_file()

    def test_four_slashes_is_absolute(self, in_tmp: Path, clock: ManualClock) -> None:
        """sqlite:////abs/path.db is the absolute path /abs/path.db."""
        target = in_tmp / "elsewhere" / "abs.db"
        store = _open(f"sqlite:///{target}", clock)
        try:
            assert str(target).startswith("/")
            assert isinstance(store, SQLiteStore)
            assert store.path == target
        finally:
            store.close()
        assert target.is_file()

    def test_tilde_is_expanded(self, in_tmp: Path, clock: ManualClock) -> None:
        """sqlite:///~/x.db is a file in the home directory."""
        store = _open("sqlite:///~/state/x.db", clock)
        try:
            assert isinstance(store, SQLiteStore)
            assert store.path == in_tmp / "home" / "state" / "x.db"
        finally:
            store.close()
        assert not (in_tmp / "~").exists()

    def test_store_uses_the_given_clock(self, in_tmp: Path, clock: ManualClock) -> None:
        """The SQLite store judges expiry by the clock passed to open_store."""
        store = _open("sqlite:///c.db", clock)
        try:
            store.set("k", "v", ttl=60)
            clock.advance(59)
            assert store.get("k") == "v"
            clock.advance(1)
            assert store.get("k") is None
        finally:
            store.close()

    def test_unopenable_file_is_a_store_error(self, in_tmp: Path, clock: ManualClock) -> None:
        """A sqlite URL naming a file that is not a database raises StoreError, not ConfigError."""
        (in_tmp / "junk.db").write_bytes(b"x" * 4096)
        with pytest.raises(StoreError, match=r"junk\.db"):
            open_store("sqlite:///junk.db", clock)

    @pytest.mark.parametrize(
        ("url", "complaint"),
        [
            ("sqlite:///", "needs a file path"),
            ("sqlite://", "three slashes"),
            ("sqlite://host/x.db", "three slashes"),
            ("sqlite:x.db", "not a store URL"),
            ("sqlite:///x.db?timeout=5", "no query string"),
        ],
    )
    def test_malformed_sqlite_urls(
        self, in_tmp: Path, clock: ManualClock, url: str, complaint: str
    ) -> None:
        """A sqlite URL without a usable path raises ConfigError saying what is wrong."""
        with pytest.raises(ConfigError, match=complaint):
            open_store(url, clock)
        assert list(in_tmp.iterdir()) == []


class TestRefusedUrls:
    def test_redis_names_key_and_source(self, clock: ManualClock) -> None:
        """A malformed redis:// URL raises an error saying which setting gave it and where."""
        with pytest.raises(ConfigError) as caught:
            open_store("redis://localhost:port/0", clock, key="STORE_URL", source="chaperone.toml")
        (problem,) = caught.value.problems
        assert problem.key == "STORE_URL"
        assert problem.source == "chaperone.toml"
        assert "redis://" in problem.message
        assert "port" in problem.message

    def test_defaults_for_key_and_source(self, clock: ManualClock) -> None:
        """Without key and source the error blames CHAPERONE_STORE from the default."""
        with pytest.raises(ConfigError) as caught:
            open_store("redis://localhost/not-a-db", clock)
        (problem,) = caught.value.problems
        assert (problem.key, problem.source) == ("CHAPERONE_STORE", "default")

    def test_unknown_scheme_lists_accepted_ones(self, clock: ManualClock) -> None:
        """An unknown scheme is named along with the schemes that work."""
        with pytest.raises(ConfigError) as caught:
            open_store("postgres://db/chaperone", clock, key="K", source="env")
        message = str(caught.value)
        assert message.startswith("K (from env): ")
        assert "postgres://" in message
        assert "sqlite:///PATH" in message
        assert "memory://" in message

    @pytest.mark.parametrize(
        "url",
        [
            "redis://:hunter2secret@cache:port/0",
            "rediss://user:hunter2secret@cache:6379/zero",
            "redis://:hunter2secret@cache:6379/0?hunter=2secret",
            "postgres://user:hunter2secret@db/chaperone",
            "hunter2secret",
            "user:hunter2secret@host",
            "://hunter2secret",
        ],
    )
    def test_errors_never_quote_credentials(self, clock: ManualClock, url: str) -> None:
        """Whatever the URL holds after its scheme stays out of the error message."""
        with pytest.raises(ConfigError) as caught:
            open_store(url, clock)
        assert "hunter2secret" not in str(caught.value)
        assert "cache" not in str(caught.value)


class TestDefaultUrl:
    def test_uses_xdg_state_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """With XDG_STATE_HOME set, the default file lives under it."""
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        expected = tmp_path / "state" / "chaperone" / "chaperone.sqlite3"
        assert default_store_url() == f"sqlite:///{expected}"

    @pytest.mark.parametrize("xdg", [None, "", "relative/state"])
    def test_falls_back_to_local_state(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
    ) -> None:
        """Unset, empty or relative XDG_STATE_HOME means ~/.local/state."""
        monkeypatch.setenv("HOME", str(tmp_path))
        if xdg is None:
            monkeypatch.delenv("XDG_STATE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_STATE_HOME", xdg)
        url = default_store_url()
        assert url == f"sqlite:///{tmp_path}/.local/state/chaperone/chaperone.sqlite3"
        assert url.startswith("sqlite:////")

    def test_default_url_opens(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: ManualClock
    ) -> None:
        """The default URL is one open_store accepts, creating the state directory."""
        monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
        store = open_store(default_store_url(), clock)
        try:
            assert isinstance(store, SQLiteStore)
            assert store.path == tmp_path / "state" / "chaperone" / "chaperone.sqlite3"
        finally:
            store.close()
        assert store.path.is_file()


class TestPackage:
    def test_all_is_sorted_and_complete(self) -> None:
        """The package exports exactly the documented names, sorted."""
        expected = [
            "STORE_ENTRY_POINT_GROUP",
            "MemoryStore",
            "ResilientStore",
            "SQLiteStore",
            "Store",
            "StoreChange",
            "StoreOpener",
            "StoreState",
            "absolute_url",
            "default_store_url",
            "open_resilient_store",
            "open_store",
        ]
        assert chaperone.store.__all__ == expected
        for name in expected:
            assert getattr(chaperone.store, name).__doc__
