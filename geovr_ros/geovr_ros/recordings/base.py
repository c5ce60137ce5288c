"""What every recording reader shares: the frame, the recording, the one error, small checks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from geovr_ros.geometry import GeometryError, validate_intrinsics


class RecordingFormatError(ValueError):
    """A recording is missing, of no known format, or does not hold what its format promises.

    `path` names the offending file or folder, `problem` what is wrong with it; the message is
    ``PATH: problem``, e.g. ``/data/seq/frame-000012.pose.txt: expected 4 rows of 4 numbers``.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f'{self.path}: {problem}')

    def __reduce__(self):
        return type(self), (self.path, self.problem)


@dataclass(frozen=True)
class RecordingFrame:
    """One frame of a recording.

    stamp: seconds; rgb: (H, W, 3) uint8; K: (3, 3) float64 pixels; T_world_cam: (4, 4) float64
    optical camera-to-world, None where the recording has no pose for the frame; depth: (H, W)
    float32 metres along optical z, NaN invalid, None unless the recording was opened
    `with_depth`; number: the frame's number in the recording (7-Scenes frame id, HoloLens
    image number, else its index among the recording's frames).
    """

    stamp: float
    rgb: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray | None
    depth: np.ndarray | None = None
    number: int = 0


class Recording:
    """The frames of one recording, read lazily in time order each time it is iterated.

    path: what was opened; format: one of FORMATS; info: what the reader chose (topics, world
    frame, sensor...); len(): the number of frames an iteration yields.
    """

    def __init__(self, path: Path, fmt: str, frames: Callable[[], Iterator[RecordingFrame]],
                 count: int, info: dict[str, Any] | None = None):
        self.path = Path(path)
        self.format = fmt
        self.info = dict(info or {})
        self._frames = frames
        self._count = count

    def __iter__(self) -> Iterator[RecordingFrame]:
        return self._frames()

    def __len__(self) -> int:
        return self._count

    def __repr__(self) -> str:
        return f'Recording({str(self.path)!r}, {self.format!r}, {self._count} frames)'


def select(items: list, stride: int = 1, max_frames: int | None = None) -> list:
    """Every `stride`-th item, at most `max_frames` of them."""
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f'stride must be a positive integer, got {stride!r}')
    if max_frames is not None and max_frames < 0:
        raise ValueError(f'max_frames must be >= 0 or None, got {max_frames!r}')
    return list(items)[::stride][:max_frames]


def intrinsics_matrix(spec, source: str | Path) -> np.ndarray | None:
    """K (3, 3) float64 from an override: None, (fx, fy, cx, cy), a (3, 3) matrix or the
    string 'fx,fy,cx,cy'. `source` is named in the error."""
    if spec is None:
        return None
    if isinstance(spec, str):
        try:
            values = [float(v) for v in spec.split(',')]
        except ValueError:
            values = []
        if len(values) != 4:
            raise RecordingFormatError(source, f'intrinsics {spec!r}: expected fx,fy,cx,cy')
        spec = values
    try:
        values = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError):
        raise RecordingFormatError(source, f'intrinsics {spec!r}: not numbers') from None
    if values.shape == (4,):
        fx, fy, cx, cy = values
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if values.shape == (3, 3):
        return values.copy()
    raise RecordingFormatError(source, f'intrinsics of shape {values.shape}: expected (fx, fy, cx, cy) '
                                       'or a 3x3 K')


class FrameChecks:
    """Per-recording checks of decoded frames: one image size, intrinsics valid for it."""

    def __init__(self):
        self._size: tuple[int, int] | None = None
        self._checked: tuple[np.ndarray, tuple[int, int]] | None = None

    def image(self, rgb: np.ndarray, path: str | Path) -> None:
        """Every colour image of a recording has the first one's size."""
        size = rgb.shape[1::-1]
        if self._size is None:
            self._size = size
        elif size != self._size:
            raise RecordingFormatError(path, f'size {size} differs from the first frame {self._size}')

    def intrinsics(self, K: np.ndarray, rgb: np.ndarray, source: str | Path, where: str = '') -> None:
        """K is a usable pinhole camera for `rgb` (geovr_ros.geometry.validate_intrinsics);
        `where` starts the problem's text."""
        h, w = rgb.shape[:2]
        if self._checked is not None and self._checked[0] is K and self._checked[1] == (w, h):
            return
        try:
            validate_intrinsics(K, w, h)
        except GeometryError as exc:
            raise RecordingFormatError(source, f'{where}intrinsics: {exc}') from None
        self._checked = (K, (w, h))

    @staticmethod
    def depth(depth: np.ndarray, rgb: np.ndarray, path: str | Path, where: str = '') -> None:
        """Depth is registered to colour: the same size."""
        if depth.shape != rgb.shape[:2]:
            raise RecordingFormatError(path, f'{where}depth {depth.shape[::-1]} and colour {rgb.shape[1::-1]} sizes '
                                             'differ (registered depth expected)')


class LensCorrection:
    """Undistorts a recording's frames as geovr_node undistorts a camera's images
    (geovr_ros.geometry.rectify), so that every reader yields pinhole frames.

    model, D, R, P: as in sensor_msgs/CameraInfo (R, P may be empty). Calling it with a
    frame's rgb (H, W, 3) uint8, K (3, 3) and depth (H, W) metres registered to the colour
    image (or None) gives them undistorted: the colour bilinear, the depth by nearest
    neighbour (NaN where nothing maps), and the pinhole K of the result (P's left 3x3, or K).
    Frames pass unchanged when D is all zero. Raises RecordingFormatError naming `source`
    for a model or D that cannot be undistorted.
    """

    def __init__(self, model: str, D, source: str | Path, R=(), P=()):
        from geovr_ros.geometry.rectify import Rectifier
        self.model, self.D = str(model), tuple(float(d) for d in np.asarray(D, np.float64).reshape(-1))
        self._R, self._P, self._source = list(np.ravel(R)), list(np.ravel(P)), source
        self._rectifier = Rectifier(cache=2)

    def __call__(self, rgb: np.ndarray, K: np.ndarray, depth: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        h, w = rgb.shape[:2]
        try:
            rectification = self._rectifier.for_camera(self.model, self.D, K, self._R, self._P, w, h)
        except GeometryError as exc:
            raise RecordingFormatError(self._source, f'lens distortion: {exc}') from None
        if rectification is None:
            return rgb, K, depth
        return (rectification.apply(rgb), rectification.K,
                None if depth is None else rectification.apply_depth(depth))

    def describe(self) -> str:
        return f'{self.model} {list(self.D)}'
