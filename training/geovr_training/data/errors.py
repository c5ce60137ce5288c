"""Typed errors of the data engine: each names the offending file or value and the problem."""

from __future__ import annotations

from geovr_ros.recordings import RecordingFormatError


class DataError(ValueError):
    """Base class of data-engine errors."""


class DataFormatError(DataError, RecordingFormatError):
    """A file or folder does not hold what its format promises: the recording reader's
    RecordingFormatError, as raised by the data engine (also for its own shard files).

    The message always starts with the offending path, then the problem, e.g.
    ``/data/seq/frame-000012.pose.txt: expected 4 rows of 4 numbers, found 3 rows``.
    """


class GenerationError(DataError):
    """A generator parameter is out of its valid range (the message names the value)."""
