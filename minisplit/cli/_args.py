"""Argument types and the one-line error parser shared by the commands."""

from __future__ import annotations

import argparse


def positive_int(text) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def seed_value(text) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def eps_value(text):
    if text == "line_search":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number or 'line_search', got {text!r}"
        ) from None


def name_list(choices):
    """The type of a ``--strategies LIST`` option: comma-separated distinct names of
    ``choices`` (a list), refused with the names allowed otherwise."""

    def parse(text) -> list[str]:
        names = [name.strip() for name in text.split(",")]
        unknown = [name for name in names if name not in choices]
        if unknown or len(set(names)) != len(names):
            raise argparse.ArgumentTypeError(
                f"must be distinct names from {','.join(choices)}, got {text!r}")
        return names

    return parse


def add_jobs(parser) -> None:
    """The ``--jobs N`` option of the commands that run a comparison."""
    parser.add_argument(
        "--jobs", type=positive_int, default=1, metavar="N",
        help="run the independent (strategy, seed) runs in N worker processes; the results "
        "are bit-identical to --jobs 1, progress arrives run by run (default: 1, in this "
        "process)",
    )


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (then exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def fail(command, message):
    """Exit with status 2 and one line, as the parser does for a bad option."""
    Parser(prog=f"minisplit {command}").error(message)
