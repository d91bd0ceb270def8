"""The CLI teaches: every command's help shows an example that parses, every option says what
it does, and the lab's commands are listed apart from the product's."""

from __future__ import annotations

import shlex

import click
import pytest
from click.testing import CliRunner

from emugen.cli import main


def commands(group: click.Group = main, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if command.hidden:
            continue
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


ALL = list(commands())


def examples(command: click.Command) -> list[str]:
    text = command.help or ""
    assert "Example" in text, "no example in its help"
    block = text.split("Example", 1)[1].split(":", 1)[1]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_command_shows_an_example_that_parses(path, command):
    for example in examples(command):
        words = shlex.split(example.split("|")[0].split("&&")[-1].split(">")[0])
        assert words[0] == "emugen", example
        words = words[1:]
        # resolve the command path the example names, then let click parse its arguments
        target: click.Command = main
        ctx = None
        while isinstance(target, click.Group) and words and words[0] in target.commands:
            ctx = target.make_context(
                target.name or "emugen", [], parent=ctx, resilient_parsing=True
            )
            target = target.commands[words.pop(0)]
        try:
            target.make_context(target.name or "", list(words), parent=ctx)
        except (click.BadParameter, FileNotFoundError) as exc:
            # an example may name a file that a run of the lab writes (a soak's store)
            assert "var/soak" in str(exc) or "var/soak" in example, exc


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) for p, _ in ALL])
def test_every_option_says_what_it_does(path, command):
    silent = [
        p.opts[0]
        for p in command.params
        if isinstance(p, click.Option) and not p.help and p.name != "help"
    ]
    assert not silent, f"emugen {' '.join(path)}: options without help: {silent}"


def test_the_lab_is_listed_apart_and_its_old_names_still_work():
    top = CliRunner().invoke(main, ["--help"]).output
    listed = [line.split()[0] for line in top.split("Commands:")[1].splitlines() if line.strip()]
    assert "lab" in listed
    assert not {"bench", "soak", "chaos"} & set(listed)
    assert CliRunner().invoke(main, ["bench", "--help"]).exit_code == 0
    assert CliRunner().invoke(main, ["lab", "soak", "--help"]).exit_code == 0
