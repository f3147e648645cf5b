"""Every option of every command has a help text, and the help shows its default."""

from __future__ import annotations

import argparse

import pytest

from farside_gan.cli import build_parser

MODULES = ("farside_gan.cli.acquire", "farside_gan.cli.prepare", "farside_gan.cli.training",
           "farside_gan.cli.products", "farside_gan.cli.evaluation", "farside_gan.cli.synthetic")


def commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: p for name, p in sub.choices.items()
            if p.get_default("func").__module__ in MODULES}


def test_the_commands_are_found():
    assert {"fetch", "prepare", "train", "predict", "evaluate", "synth-archive"} <= set(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_has_help_and_shows_its_default(name):
    parser = commands()[name]
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.dest}: no help text"
        shown = action.required or action.default in (None, False, [], argparse.SUPPRESS)
        if not shown and action.option_strings:
            default = action.default if not hasattr(action.default, "total_seconds") else None
            assert "(default:" in parser._get_formatter()._expand_help(action) \
                or "%(default)" in action.help, f"{name} {action.dest}"
            if default is not None:
                assert str(default) in " ".join(text.split()), f"{name} {action.dest}: {default}"
