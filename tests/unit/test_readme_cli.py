"""README's "Command line" section matches the parser: the same commands both ways, an Examples section in
every command's --help, and the exit-code table equal to swapdrop_cli.errors.ExitCode."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from swapdrop_cli.app import build_parser, main
from swapdrop_cli.errors import ExitCode

README = Path(__file__).resolve().parents[2] / "README.md"
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_CODE_SPAN = re.compile(r"`([^`]*)`")


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table(text: str, first_header: str) -> list[list[str]]:
    """The body rows (cells, stripped, with `\\|` unescaped) of the table whose first header cell is given."""
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")), None)
    assert header is not None, f"no table headed '{first_header}' in README's Command line section"
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(line.strip())[1:-1]])
    return rows


def readme_commands() -> list[tuple[str, ...]]:
    """Each row's command path: the words after `swapdrop` up to the first argument (UPPER, [opt], -x)."""
    paths = []
    for cells in table(section("Command line"), "command"):
        span = _CODE_SPAN.match(cells[0])
        assert span and span.group(1).startswith("swapdrop "), f"a command cell is `swapdrop …`: {cells[0]!r}"
        words = []
        for word in span.group(1).split()[1:]:
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        paths.append(tuple(words))
    return paths


def parser_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Every runnable command path → its --help text; a group (face) stands for its subcommands."""
    found: dict[tuple[str, ...], str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = parser_commands(sub, (*prefix, name))
                found.update(nested or {(*prefix, name): sub.format_help()})
    return found


def help_text(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    """What `swapdrop PATH --help` prints (local and demo are handed to swapdrop_local's parser)."""
    try:
        code = main([*path, "--help"])
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr().out
    assert code == 0, f"swapdrop {' '.join(path)} --help exited {code}"
    return out


def test_readme_lists_exactly_the_commands_of_swapdrop_help() -> None:
    documented = readme_commands()
    assert len(documented) == len(set(documented)), f"a command is listed twice: {documented}"
    actual = set(parser_commands(build_parser()))
    assert set(documented) - actual == set(), "README lists commands swapdrop does not have"
    assert actual - set(documented) == set(), "swapdrop has commands README's Command line section does not list"


def test_readme_lists_the_top_level_commands_in_help_order(capsys: pytest.CaptureFixture[str]) -> None:
    top = list(dict.fromkeys(path[0] for path in readme_commands()))
    listed = re.findall(r"^    (\w+)\s", help_text((), capsys), re.MULTILINE)
    assert top == listed, "README's command table follows swapdrop --help's order"


def test_every_command_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """A line 'Examples:' then indented `swapdrop …` lines, at least one of them running this very command."""
    lacking = []
    for path in sorted(parser_commands(build_parser())):
        examples = re.search(r"^Examples:\n((?:  swapdrop .*\n?)+)", help_text(path, capsys), re.MULTILINE)
        if not examples or f" {' '.join(path)}" not in examples.group(1):
            lacking.append(" ".join(path))
    assert not lacking, f"no Examples section with an example of the command itself in --help of: {lacking}"


def test_every_readme_example_parses() -> None:
    """Each command row's example (third cell) is a command line the parser accepts."""
    parser = build_parser()
    for cells in table(section("Command line"), "command"):
        example = _CODE_SPAN.match(cells[2])
        assert example, f"an example cell is one `swapdrop …` code span: {cells[2]!r}"
        argv = example.group(1).split()
        assert argv[0] == "swapdrop"
        if argv[1] in ("local", "demo"):  # swapdrop_local's own parser
            continue
        try:
            parser.parse_args(argv[1:])
        except BaseException as error:  # argparse usage errors are CliError (SystemExit from --help)
            pytest.fail(f"README example {example.group(1)!r} does not parse: {error}")


def test_exit_code_table_is_exit_code() -> None:
    rows = table(section("Command line"), "exit code")
    documented = {int(_CODE_SPAN.fullmatch(cells[0]).group(1)) for cells in rows}
    assert documented == {code.value for code in ExitCode}
    assert len(rows) == len(ExitCode), "one row per exit code"


def readme_command_lines() -> list[str]:
    """Every `swapdrop …` command in README's shell blocks (continuations joined, comments and pipes cut)."""
    text = README.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if re.match(r"(\.venv/bin/)?swapdrop ", line):
                commands.append(re.split(r"\s[|>]\s", line)[0])
    return commands


def test_every_swapdrop_command_in_the_readme_parses() -> None:
    """The deploy guide's and the examples' command lines are ones `swapdrop` accepts (local and demo: the
    local stack's own parser); `$(…)` stands for job ids."""
    from swapdrop_local.cli import build_parser as local_parser

    commands = readme_command_lines()
    assert len(commands) >= 10, commands
    for command in commands:
        argv = shlex.split(re.sub(r"\$\([^)]*\)", "3f2a9c1e5b7d4e8fa0b1c2d3e4f50617", command))[1:]
        parser = local_parser() if argv[0] in ("local", "demo") else build_parser()
        try:
            parser.parse_args(argv)
        except BaseException as error:  # argparse usage errors are CliError or SystemExit
            pytest.fail(f"README's {command!r} does not parse: {error!r}")


def test_readme_installs_only_extras_pyproject_has() -> None:
    import tomllib

    extras = tomllib.loads((README.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    named = set(re.findall(r"pip install '\.\[(\w+)\]'", section("Command line")))
    assert named, "README shows the extras"
    assert named <= set(extras.get("optional-dependencies", {})), f"README names extras pyproject lacks: {named}"
