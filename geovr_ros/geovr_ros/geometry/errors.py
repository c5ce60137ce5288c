"""Typed errors of the geometry core.

All derive from `ValueError`, so callers that only know about bad values can catch that.
Every message names the offending value.
"""


class GeometryError(ValueError):
    """Base class of every error raised by `geovr_ros.geometry`."""


class InvalidIntrinsicsError(GeometryError):
    """A camera matrix K, an image size or a field of view is not usable."""


class ImageEncodingError(GeometryError):
    """A ROS image encoding is unknown, or its step/height/width/data disagree."""


class ShapeError(GeometryError):
    """An array has the wrong shape, dtype or non-finite values where they are not allowed."""
