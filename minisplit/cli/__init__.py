"""The command line: ``python -m minisplit [COMMAND] [OPTIONS]``.

Each command is one entry of :data:`COMMANDS`: a help line, a function that adds
the command's options to its parser, and a function that runs it and returns the
exit status. :func:`main` only parses and dispatches, so a new command is one new
entry. With no command (or only its options), :data:`DEFAULT_COMMAND` runs.

``grow`` (:mod:`minisplit.cli.grow`) is the main job: grow a network by
splitting and compare it with the baselines. ``prototypes``, ``prune`` and ``keywords``
(:mod:`minisplit.cli.prototypes`, :mod:`~minisplit.cli.prune`, :mod:`~minisplit.cli.keywords`)
run the seed's case studies: prototype networks, CNNs against pruning, keyword spotting with a
DS-CNN. ``verify``
(:mod:`minisplit.cli.verify`) checks every hand-derived derivative against
finite differences.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import minisplit
from minisplit.cli import grow, keywords, prototypes, prune, verify
from minisplit.cli._args import Parser
from minisplit.cli.grow import STRATEGY_NAMES, TASKS, Progress, size_table
from minisplit.cli.verify import LAYER_TYPES

__all__ = [
    "COMMANDS",
    "DEFAULT_COMMAND",
    "LAYER_TYPES",
    "STRATEGY_NAMES",
    "TASKS",
    "Command",
    "Progress",
    "build_parser",
    "main",
    "size_table",
]


@dataclass(frozen=True)
class Command:
    """One subcommand: a help line, its options, and the function that runs it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Subcommands by name; ``main`` dispatches on this dict.
COMMANDS = {
    "grow": Command(
        help="grow a network by splitting on a built-in task, compare it with the baselines, "
        "print tables and write figures and JSON (the default command)",
        add_arguments=grow.add_arguments,
        run=grow.run,
    ),
    "prototypes": Command(
        help="grow Li et al.'s prototype network on the digits by splitting prototypes, "
        "against the prototype baselines; draw the split family tree and write a report",
        add_arguments=prototypes.add_arguments,
        run=prototypes.run,
    ),
    "prune": Command(
        help="grow a small CNN by splitting against L1-prune, Bn-prune and the width family "
        "at matched sizes; tables, accuracy-vs-size figures, gamma histograms and a report",
        add_arguments=prune.add_arguments,
        run=prune.run,
    ),
    "keywords": Command(
        help="grow a narrow DS-CNN for keyword spotting by splitting against fixed DS-CNNs of "
        "matched widths; a Hello-Edge-style table, figures and a report",
        add_arguments=keywords.add_arguments,
        run=keywords.run,
    ),
    "verify": Command(
        help="check every layer's gradient, Hessian-vector product and Hessian "
        "against finite differences",
        add_arguments=verify.add_arguments,
        run=verify.run,
    ),
}
#: The command that runs when none is given (also with only its options).
DEFAULT_COMMAND = "grow"
#: Options of ``minisplit`` itself; any other leading option belongs to the default command.
TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``minisplit`` with one subparser per entry of :data:`COMMANDS`."""
    parser = Parser(
        prog="minisplit",
        description="Splitting Steepest Descent in plain NumPy. "
        f"Without a command, runs '{DEFAULT_COMMAND}'.",
    )
    parser.add_argument("--version", action="version", version=minisplit.__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
    return parser


def main(argv=None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return its exit status.

    Examples
    --------
    Not run as a doctest (15 s; tests/test_cli.py runs ``verify``):

    >>> main(["verify", "--directions", "1"])  # doctest: +SKIP
    Relative error ...
    0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in TOP_LEVEL_OPTIONS):
        argv = [DEFAULT_COMMAND, *argv]  # options without a command belong to the default
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print(f"minisplit {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130
