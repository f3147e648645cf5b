"""`farside-gan COMMAND --help` describes every option and shows its default."""

from __future__ import annotations

import argparse

import pytest

from farside_gan.cli import build_parser


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_every_pipeline_command_is_there():
    assert {"synth-archive", "fetch-period", "prepare", "align", "normalize", "manifest", "train",
            "predict", "evaluate", "quicklook", "report-page"} <= set(subcommands())


@pytest.mark.parametrize("name, parser", sorted(subcommands().items()))
def test_every_option_has_help_and_shows_its_default(name, parser):
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        what = f"{name} {'/'.join(action.option_strings) or action.dest}"
        assert action.help and action.help.strip(), f"{what}: no help"
        shown = formatter._expand_help(action)  # the text --help prints for it
        default = action.default
        if default is None or default is False or (isinstance(default, list) and not default):
            continue  # nothing worth saying: absent, an off switch, none of a repeatable option
        expected = default if isinstance(default, str) else str(default)
        assert f"(default: {expected})" in shown, f"{what}: default {default!r} not in {shown!r}"
    parser.format_help()  # and the whole page renders


def test_string_defaults_go_through_the_option_type():
    """synth-archive --cadence shows '12h' (what a user types) and still parses to a duration."""
    from datetime import timedelta
    args = build_parser().parse_args(["synth-archive", "root", "--start", "2011-01-01T00:00",
                                      "--end", "2011-01-02T00:00"])
    assert args.cadence == timedelta(hours=12)
