"""The `vidrelay` command line."""

from vidrelay.cli.root import app

__all__ = ["app"]
