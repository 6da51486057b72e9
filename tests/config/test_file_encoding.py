"""A configuration file or ``.env`` that is not UTF-8 is a problem naming the setting on
the bad line and the file, and the rest of the file is still read and checked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaperone import ConfigError, ConfigProblem
from chaperone.config import collect_settings, load_settings
from chaperone.config._files import read_dotenv, read_toml

LATIN_1 = "Café Alerts".encode("latin-1")
"""Text saved in Latin-1: ``é`` is the byte 0xe9, which is not UTF-8."""


def problems_of(folder: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ or {}, folder)
    return [str(problem) for problem in caught.value.problems]


class TestToml:
    def test_the_bad_line_names_its_dotted_key(self, tmp_path: Path) -> None:
        """A Latin-1 value in ``[channels.log]`` is named ``channels.log.logger``, with the
        file, the byte and the line.
        """
        path = tmp_path / "chaperone.toml"
        path.write_bytes(
            b'[alerting]\nenabled = true\n\n[channels.log]\nlogger = "' + LATIN_1 + b'"\n'
        )
        (problem,) = problems_of(tmp_path)
        assert problem == (
            f"channels.log.logger (from {path}): is not UTF-8 text (byte 0xe9 on line 5); "
            "save the file as UTF-8"
        )

    def test_an_entry_of_an_array_of_tables_is_named_by_index(self, tmp_path: Path) -> None:
        """A bad line in the second ``[[alerting.routes]]`` is ``alerting.routes[1].name``."""
        (tmp_path / "chaperone.toml").write_bytes(
            b'[[alerting.routes]]\nchannels = ["log"]\n[[alerting.routes]]\nname = "'
            + LATIN_1
            + b'"\nchannels = ["log"]\n'
        )
        (problem,) = problems_of(tmp_path)
        assert problem.startswith("alerting.routes[1].name (from ")

    def test_the_rest_of_the_file_is_still_checked(self, tmp_path: Path) -> None:
        """Other problems in the same file are listed with the one about the encoding,
        and the settings on good lines are read.
        """
        (tmp_path / "chaperone.toml").write_bytes(
            b"# " + LATIN_1 + b'\n[alerting]\nhistory_limit = "many"\n[log]\nlevel = "debug"\n'
        )
        loaded, problems = collect_settings({}, tmp_path)
        assert [problem.key for problem in problems] == ["chaperone.toml", "alerting.history_limit"]
        assert loaded.log_level == "debug"

    def test_pyproject_is_read_the_same_way(self, tmp_path: Path) -> None:
        """A bad line under ``[tool.chaperone.log]`` of pyproject.toml is named too."""
        path = tmp_path / "pyproject.toml"
        path.write_bytes(b'[tool.chaperone.log]\nlevel = "' + LATIN_1 + b'"\n')
        (problem,) = problems_of(tmp_path)
        assert problem.startswith(f"tool.chaperone.log.level (from {path}): is not UTF-8")

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
    def test_an_unreadable_file_is_a_problem(self, tmp_path: Path) -> None:
        """A config file that cannot be read is a problem naming it, not an OSError."""
        path = tmp_path / "chaperone.toml"
        path.write_text("[log]\n", encoding="utf-8")
        path.chmod(0)
        (problem,) = problems_of(tmp_path)
        assert problem.startswith(f"chaperone.toml (from {path}): cannot be read")


class TestDotenv:
    def test_the_bad_line_names_its_variable(self, tmp_path: Path) -> None:
        """A Latin-1 value in ``.env`` is named by its variable, with the file and line."""
        path = tmp_path / ".env"
        path.write_bytes(b"CHAPERONE_LOG_LEVEL=debug\nexport MAIL_FROM_NAME=" + LATIN_1 + b"\n")
        loaded, problems = collect_settings({}, tmp_path)
        assert [str(problem) for problem in problems] == [
            f"MAIL_FROM_NAME (from .env file {path}): is not UTF-8 text (byte 0xe9 on line 2); "
            "save the file as UTF-8"
        ]
        assert loaded.log_level == "debug"
        assert "MAIL_FROM_NAME" not in loaded.environ

    def test_the_environment_still_counts(self, tmp_path: Path) -> None:
        """Variables of the environment are read beside a broken ``.env``."""
        (tmp_path / ".env").write_bytes(b"\xff\xfe\n")
        loaded, problems = collect_settings({"CHAPERONE_HISTORY_LIMIT": "7"}, tmp_path)
        assert [problem.key for problem in problems] == [".env"]
        assert loaded.history_limit == 7


class TestAnyBytes:
    @settings(max_examples=100, deadline=None)
    @given(data=st.binary(max_size=200))
    def test_any_bytes_are_read_or_problems(self, data: bytes) -> None:
        """Any bytes in a TOML file or a ``.env`` give a table (or variables) and
        problems naming the file, never an exception.
        """
        with tempfile.TemporaryDirectory() as folder:
            for name, read in (("chaperone.toml", read_toml), (".env", read_dotenv)):
                path = Path(folder) / name
                path.write_bytes(data)
                problems: list[ConfigProblem] = []
                read(path, problems)
                for problem in problems:
                    assert str(path) in problem.source
                    assert "\n" not in str(problem)
