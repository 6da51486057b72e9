"""The documentation tells the truth: every example on every page runs, every section of
the seed guide has a page that answers it with an example, every setting and every hook
is documented as the code has it."""

from __future__ import annotations

import inspect
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import click
import pytest
import yaml

from chaperone import hookspecs
from chaperone.cli import COMMANDS, cli
from chaperone.config._loading import SETTING_SPECS
from helpers.doc_examples import DOCS, ROOT, PageRun, blocks, pages

SEED = ROOT.parent / "shared" / "seed" / "alerting.md"
"""The PHP original's guide, beside the repository where the developers work (not in CI)."""
SEED_OUTLINE = Path(__file__).parent / "seed_outline.md"
"""Its chapter and section headings, kept in the repository so CI checks coverage too."""
HOOKS_PAGE = DOCS / "reference" / "hooks.md"
COMMANDS_PAGE = DOCS / "reference" / "commands.md"
CONFIGURATION_PAGE = DOCS / "configuration.md"
REDIS_IN_DOCS = "redis://localhost:6379"

_HEADING = re.compile(r"^(?P<level>#{1,6})[ ]+(?P<text>.+?)[ ]*$", re.M)
_FENCED = re.compile(r"^[ ]*```.*?^[ ]*```[ ]*$", re.S | re.M)


def headings(markdown: str) -> list[tuple[int, str, int, int]]:
    """(level, text, start, end of section) of each heading outside code blocks."""
    # Blank out code blocks (a "# comment" in them is no heading), keeping every offset.
    prose = _FENCED.sub(lambda match: re.sub(r"[^\n]", " ", match.group(0)), markdown)
    found = [
        (len(match.group("level")), match.group("text"), match.start())
        for match in _HEADING.finditer(prose)
    ]
    sections = []
    for index, (level, text, start) in enumerate(found):
        end = next((later for lvl, _, later in found[index + 1 :] if lvl <= level), len(markdown))
        sections.append((level, text, start, end))
    return sections


def normalised(title: str) -> str:
    """A heading without its number ("3. Group related alerts"), case or markup."""
    title = re.sub(r"^\d+\.\s*", "", title.strip())
    return re.sub(r"[`*_]", "", title).casefold()


def runnable_blocks(markdown: str) -> int:
    """How many blocks of a Markdown text the example tests run or load."""
    return sum(block.runnable for block in blocks(markdown))


def outline(markdown: str) -> str:
    """The ## and ### headings of a Markdown text, one a line, as Markdown."""
    return "".join(
        f"{'#' * level} {text}\n" for level, text, _, _ in headings(markdown) if level in {2, 3}
    )


def seed_sections() -> list[tuple[str, list[str]]]:
    """The seed guide's chapters (##) with their sections (###), from its outline."""
    chapters: list[tuple[str, list[str]]] = []
    for level, text, _, _ in headings(SEED_OUTLINE.read_text(encoding="utf-8")):
        if level == 2:
            chapters.append((text, []))
        elif level == 3 and chapters:
            chapters[-1][1].append(text)
    return chapters


def docs_chapter(title: str) -> tuple[Path, str] | None:
    """The page and text of the docs section whose heading is ``title``: a page's title
    (level 1) first, else a level-2 section."""
    for wanted in (1, 2):
        for page in pages():
            markdown = page.read_text(encoding="utf-8")
            for level, text, start, end in headings(markdown):
                if level == wanted and normalised(text) == normalised(title):
                    return page, markdown[start:end]
    return None


PAGE_THREADS = 3
"""Pages run at once: a page's time goes to the commands it starts, one at a time."""


@attrs.frozen
class PageOutcome:
    """How running one page's examples ended: how many blocks ran, or the failure."""

    ran: int = 0
    failure: Exception | None = None


def run_page(page: Path, folder: Path, substitutions: dict[str, str]) -> PageOutcome:
    """Run one page, keeping its failure to report in the page's own test."""
    try:
        return PageOutcome(ran=PageRun(page, folder, substitutions).run())
    except Exception as failure:  # reported by the page's test, with its traceback
        return PageOutcome(failure=failure)


@pytest.fixture(scope="session")
def page_outcomes(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[Path, PageOutcome]:
    """Every page run once, several at a time; the Redis pages one after the other (they
    share the session's server)."""
    redis_pages = [p for p in pages() if REDIS_IN_DOCS in p.read_text(encoding="utf-8")]
    substitutions: dict[str, str] = {}
    if redis_pages:
        server = request.getfixturevalue("redis_server")
        substitutions[REDIS_IN_DOCS] = f"redis://127.0.0.1:{server.port}"

    def folder(page: Path) -> Path:
        return tmp_path_factory.mktemp(page.stem)

    def run_redis_pages() -> dict[Path, PageOutcome]:
        return {page: run_page(page, folder(page), substitutions) for page in redis_pages}

    outcomes: dict[Path, PageOutcome] = {}
    with ThreadPoolExecutor(PAGE_THREADS) as pool:
        serial = pool.submit(run_redis_pages)
        others = {
            page: pool.submit(run_page, page, folder(page), {})
            for page in pages()
            if page not in redis_pages
        }
        outcomes.update(serial.result())
        outcomes.update({page: future.result() for page, future in others.items()})
    return outcomes


class TestExamples:
    @pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(DOCS)))
    def test_page_examples_run(self, page: Path, page_outcomes: dict[Path, PageOutcome]) -> None:
        """Each code block of the page runs (or loads) as pasted, in order, in a fresh
        folder with its own store; Redis examples run against a real server."""
        outcome = page_outcomes[page]
        if outcome.failure is not None:
            raise outcome.failure
        if page.name != "benchmarks.md" and page.parent.name != "reference":
            assert outcome.ran >= 1, f"{page.relative_to(ROOT)} has no example the tests run"

    def test_the_harness_fails_a_broken_example(self, tmp_path: Path) -> None:
        """A page whose command fails makes the page's test fail, naming the line."""
        page = tmp_path / "docs-page.md"
        page.write_text("# Broken\n\n```bash\nchaperone no-such-command\n```\n", encoding="utf-8")
        with pytest.raises(AssertionError, match=r"docs-page.md:4: `chaperone no-such"):
            PageRun(page, tmp_path, {}).run()


class TestSeedCoverage:
    @pytest.mark.skipif(not SEED.exists(), reason="the seed guide is not beside this checkout")
    def test_the_outline_is_the_seeds(self) -> None:
        """The committed outline has exactly the seed guide's chapters and sections."""
        expected = outline(SEED.read_text(encoding="utf-8"))
        assert SEED_OUTLINE.read_text(encoding="utf-8") == expected

    def test_the_outline_has_the_chapters(self) -> None:
        """The outline is not empty (so the coverage test can't pass on nothing)."""
        assert len(seed_sections()) >= 13

    @pytest.mark.parametrize(
        ("chapter", "sections"), seed_sections(), ids=[title for title, _ in seed_sections()]
    )
    def test_chapter_has_a_page_with_examples(self, chapter: str, sections: list[str]) -> None:
        """Each chapter of the seed guide, and each of its sections, has a heading of the
        same name in the docs, with at least one example the tests run."""
        found = docs_chapter(chapter)
        assert found is not None, f"no docs heading {chapter!r}"
        page, text = found
        assert runnable_blocks(text) >= 1, f"{page.name}: {chapter!r} has no runnable example"
        inside = {normalised(t): text[s:e] for _, t, s, e in headings(text)}
        for section in sections:
            body = inside.get(normalised(section))
            assert body is not None, f"{page.name}: no heading {section!r} under {chapter!r}"
            assert runnable_blocks(body) >= 1, (
                f"{page.name}: {chapter!r} / {section!r} has no runnable example"
            )


class TestReference:
    def test_every_environment_variable_is_documented(self) -> None:
        """The configuration page names every environment variable the loader reads."""
        text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
        missing = [spec.env for spec in SETTING_SPECS if spec.env and spec.env not in text]
        assert not missing

    def test_every_page_is_in_the_navigation(self) -> None:
        """mkdocs.yml lists every page (mkdocs only informs about the others)."""
        config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

        def listed(node: object) -> set[str]:
            if isinstance(node, str):
                return {node} if node.endswith(".md") else set()
            if isinstance(node, list):
                return set().union(*(listed(item) for item in node))
            if isinstance(node, dict):
                return set().union(*(listed(value) for value in node.values()))
            return set()

        on_disk = {str(page.relative_to(DOCS)) for page in pages() if "examples" not in page.parts}
        assert on_disk <= listed(config["nav"])


def hookspec_functions() -> list[tuple[str, inspect.Signature, str]]:
    """(name, signature, first docstring line) of every hookspec."""
    return [
        (name, inspect.signature(function), inspect.getdoc(function) or "")
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("chaperone_")
    ]


def prose(text: str) -> str:
    """Text as words, without code marks or Sphinx roles (docstrings use reST)."""
    return " ".join(re.sub(r":\w+:|`", "", text).split())


def documented_hooks() -> dict[str, str]:
    """Hook name -> the parameter list its heading on the hook page shows."""
    text = HOOKS_PAGE.read_text(encoding="utf-8")
    return {
        match.group("name"): match.group("params")
        for match in re.finditer(
            r"^#{2,3} `(?P<name>chaperone_\w+)\((?P<params>[^)]*)\)`", text, re.M
        )
    }


class TestHookReference:
    def test_there_are_hooks(self) -> None:
        """The hookspecs module defines hooks (so the tests below can't pass on none)."""
        assert len(hookspec_functions()) >= 10

    @pytest.mark.parametrize(
        ("name", "signature", "doc"),
        hookspec_functions(),
        ids=[name for name, _, _ in hookspec_functions()],
    )
    def test_hook_is_documented_with_its_signature(
        self, name: str, signature: inspect.Signature, doc: str
    ) -> None:
        """Each hookspec has a heading `name(params)` on the hook page, its parameters
        in order, and its docstring's first sentence under it."""
        documented = documented_hooks()
        assert name in documented, f"{name} is missing from {HOOKS_PAGE.relative_to(ROOT)}"
        params = [part.strip() for part in documented[name].split(",") if part.strip()]
        assert params == list(signature.parameters), f"{name}: {params}"
        first_paragraph = prose(doc.split("\n\n", 1)[0])
        assert first_paragraph in prose(HOOKS_PAGE.read_text(encoding="utf-8")), (
            f"{name}: its docstring's first paragraph is not on the page"
        )

    def test_no_documented_hook_is_unknown(self) -> None:
        """The page documents no hook the code doesn't have (a renamed hook)."""
        known = {name for name, _, _ in hookspec_functions()}
        assert set(documented_hooks()) <= known


def leaf_commands() -> list[tuple[str, click.Command]]:
    """("chaperone config check", command) for every built-in command that does something
    (an installed plugin's commands are its own to document)."""
    context = click.Context(cli)

    def walk(command: click.Command, path: str) -> list[tuple[str, click.Command]]:
        if isinstance(command, click.Group):
            # A group that also runs by itself (``chaperone serve``) is a command too.
            found = [(path, command)] if command.invoke_without_command else []
            names = command.list_commands(context)
            for name in sorted(COMMANDS) if command is cli else names:
                sub = command.get_command(context, name)
                assert sub is not None
                found += walk(sub, f"{path} {name}")
            return found
        return [(path, command)]

    return walk(cli, "chaperone")


class TestCommandReference:
    def test_there_are_commands(self) -> None:
        """The CLI has commands (so the test below can't pass on none)."""
        assert len(leaf_commands()) >= 15

    @pytest.mark.parametrize(
        ("path", "command"), leaf_commands(), ids=[path for path, _ in leaf_commands()]
    )
    def test_command_is_documented_with_its_options(
        self, path: str, command: click.Command
    ) -> None:
        """Each command has a section on the commands page naming each of its options."""
        markdown = COMMANDS_PAGE.read_text(encoding="utf-8")
        sections = {
            text.strip("`"): markdown[start:end] for _, text, start, end in headings(markdown)
        }
        assert path in sections, f"{path} is missing from {COMMANDS_PAGE.relative_to(ROOT)}"
        options = [
            flag
            for parameter in command.params
            if isinstance(parameter, click.Option)
            for flag in parameter.opts + parameter.secondary_opts
        ]
        missing = [flag for flag in options if f"`{flag}`" not in sections[path]]
        assert not missing, f"{path}: options not documented: {missing}"
