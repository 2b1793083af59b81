"""``python -m minisplit``: the command line (see :mod:`minisplit.cli`)."""

from minisplit.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
