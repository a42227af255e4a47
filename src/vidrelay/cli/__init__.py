"""The `vidrelay` command line."""

from __future__ import annotations

import sys

from vidrelay.cli.common import print_error
from vidrelay.cli.root import app
from vidrelay.settings import InvalidSettings

__all__ = ["app", "main"]


def main() -> None:
    """The `vidrelay` entry point: a bad setting or config file, whatever the command and
    wherever it is read (`serve` and `worker` included), ends the run with one line naming it
    and status 2, never a traceback."""
    try:
        app()
    except InvalidSettings as error:
        print_error(str(error))
        sys.exit(2)
