"""The ``farside-gan`` command: a thin layer over the library, one subcommand per task.

Each module in this package owns a group of subcommands and exposes ``register(subparsers)``,
which adds its parsers and sets ``func`` to a function taking the parsed ``args`` and returning
an exit code. Keep the work in the library; a command only parses, calls and reports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from farside_gan import __version__
from farside_gan.core.errors import NO_SPACE_ERRNOS, FarsideError

# Command groups, in the order they appear in --help (the order of the pipeline).
COMMAND_MODULES = ("synthetic", "acquire", "prepare", "training", "products", "evaluation")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help ends with its default, where it has one worth saying (not None, an
    empty list or an off switch)."""

    def _get_help_string(self, action):
        default = action.default  # (0 == False: compare by identity)
        if action.required or default is None or default is False \
                or default is argparse.SUPPRESS or (isinstance(default, list) and not default) \
                or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """The parser of every subcommand: options show their defaults."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="farside-gan",
        description="Solar farside magnetograms from EUV images with a Pix2PixHD GAN.")
    parser.add_argument("--version", action="version", version=f"farside-gan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"farside_gan.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"farside_gan.cli.{name}":
                raise
            continue  # that command group is not part of this build
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FarsideError as exc:
        # one line, whatever the message quotes (a library's multi-line text, a garbled card)
        print(f"farside-gan {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        # a write outside fitsio.atomic_output (whose OutputError says the same): one line too
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"farside-gan {args.command}: error: {where}cannot write: {exc.strerror}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
