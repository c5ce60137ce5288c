"""Typed errors of the data engine: each names the offending file or value and the problem."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Base class of data-engine errors."""


class DataFormatError(DataError):
    """A file or folder does not hold what its format promises.

    The message always starts with the offending path, then the problem, e.g.
    ``/data/seq/frame-000012.pose.txt: expected 4 rows of 4 numbers, found 3 rows``.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f'{self.path}: {problem}')


class GenerationError(DataError):
    """A generator parameter is out of its valid range (the message names the value)."""
