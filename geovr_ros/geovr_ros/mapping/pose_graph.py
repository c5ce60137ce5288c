"""Keyframe poses in a GTSAM factor graph, optimised incrementally with iSAM2."""
from __future__ import annotations

import numpy as np

from geovr_ros.geometry import non_rigid

# GTSAM orders a Pose3 tangent vector (rotation, translation); ROS covariances are
# (x, y, z, roll, pitch, yaw): the same blocks swapped.
_ROS_TO_GTSAM = np.array([3, 4, 5, 0, 1, 2])


def gtsam_covariance(covariance_ros: np.ndarray) -> np.ndarray:
    """(6, 6) covariance in ROS order (position, rotation) -> GTSAM's (rotation, position)."""
    c = np.asarray(covariance_ros, dtype=np.float64)
    return c[np.ix_(_ROS_TO_GTSAM, _ROS_TO_GTSAM)]


class PoseGraph:
    """Poses keyed by int ids; odometry and loop-closure factors between them.

    Args:
        loop_kernel: robust kernel of loop closures: 'cauchy', 'huber' or 'none'.
        loop_kernel_scale: the kernel's scale in whitened units (sigmas).
        odometry_kernel_scale: a Huber kernel on odometry factors too (sigmas; 0: none).
        min_sigma: floor of every standard deviation (m, rad). PnP covariances describe the
            noise of the matches, not the bias of learned depth; left at their millimetres, a
            drifted chain of odometry factors outweighs a correct loop, which the robust kernel
            then discards as an outlier (measured on a drifting loop: 19 cm left at the revisit
            with a 1 mm floor, 1 cm with 1 cm).
    """

    def __init__(self, loop_kernel: str = 'cauchy', loop_kernel_scale: float = 3.0,
                 odometry_kernel_scale: float = 3.0, min_sigma: float = 0.01):
        import gtsam
        if loop_kernel not in ('cauchy', 'huber', 'none'):
            raise ValueError(f"loop_kernel must be 'cauchy', 'huber' or 'none', got {loop_kernel!r}")
        self._gtsam = gtsam
        params = gtsam.ISAM2Params()
        params.setRelinearizeThreshold(0.01)
        params.relinearizeSkip = 1
        self._isam = gtsam.ISAM2(params)
        self.loop_kernel, self.loop_kernel_scale = loop_kernel, float(loop_kernel_scale)
        self.odometry_kernel_scale = float(odometry_kernel_scale)
        self.min_sigma = float(min_sigma)
        self._estimate: dict[int, np.ndarray] = {}
        self.odometry: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self.loops: list[tuple[int, int, np.ndarray, np.ndarray]] = []
        self.first_key: int | None = None

    def __len__(self) -> int:
        return len(self._estimate)

    def __contains__(self, key: int) -> bool:
        return key in self._estimate

    @property
    def keys(self) -> list[int]:
        return sorted(self._estimate)

    def _noise(self, covariance: np.ndarray, kernel: str, scale: float):
        gtsam = self._gtsam
        cov = gtsam_covariance(covariance)
        cov = 0.5 * (cov + cov.T)
        w, v = np.linalg.eigh(cov)
        cov = (v * np.maximum(w, self.min_sigma ** 2)) @ v.T
        base = gtsam.noiseModel.Gaussian.Covariance(cov)
        if kernel == 'none' or scale <= 0:
            return base
        estimator = (gtsam.noiseModel.mEstimator.Cauchy.Create(scale) if kernel == 'cauchy'
                     else gtsam.noiseModel.mEstimator.Huber.Create(scale))
        return gtsam.noiseModel.Robust.Create(estimator, base)

    def _update(self, graph, values, extra_iterations: int = 0) -> None:
        self._isam.update(graph, values)
        for _ in range(extra_iterations):
            self._isam.update()
        result = self._isam.calculateEstimate()
        self._estimate = {int(k): result.atPose3(k).matrix() for k in result.keys()}

    def add_first(self, key: int, T: np.ndarray) -> None:
        """The first pose, anchored where it is (map = odom at the start)."""
        gtsam = self._gtsam
        if self._estimate:
            raise ValueError(f'the graph already has poses; {key} cannot be the first')
        graph, values = gtsam.NonlinearFactorGraph(), gtsam.Values()
        noise = gtsam.noiseModel.Diagonal.Sigmas(np.full(6, 1e-6))
        graph.add(gtsam.PriorFactorPose3(key, gtsam.Pose3(np.asarray(T, dtype=np.float64)), noise))
        values.insert(key, gtsam.Pose3(np.asarray(T, dtype=np.float64)))
        self.first_key = int(key)
        self._update(graph, values)

    def add_odometry(self, previous: int, key: int, T_previous_key: np.ndarray, covariance: np.ndarray) -> None:
        """A new pose `key` measured from `previous` (T_previous_key (4, 4); covariance (6, 6)
        of the measurement in ROS order, metres and radians)."""
        gtsam = self._gtsam
        if previous not in self._estimate:
            raise KeyError(f'odometry from {previous}, which is not in the graph')
        if key in self._estimate:
            raise ValueError(f'pose {key} is already in the graph')
        T = np.asarray(T_previous_key, dtype=np.float64)
        graph, values = gtsam.NonlinearFactorGraph(), gtsam.Values()
        graph.add(gtsam.BetweenFactorPose3(previous, key, gtsam.Pose3(T),
                                           self._noise(covariance, 'huber', self.odometry_kernel_scale)))
        values.insert(key, gtsam.Pose3(self._estimate[previous] @ T))
        self.odometry.append((int(previous), int(key), T.copy(), np.asarray(covariance, dtype=np.float64).copy()))
        self._update(graph, values)

    def add_loop(self, older: int, key: int, T_older_key: np.ndarray, covariance: np.ndarray,
                 iterations: int = 3) -> None:
        """A loop closure: pose `key` seen from `older` (robust kernel; a few extra iSAM2
        iterations so the correction spreads along the loop at once)."""
        gtsam = self._gtsam
        for k in (older, key):
            if k not in self._estimate:
                raise KeyError(f'loop closure with {k}, which is not in the graph')
        T = np.asarray(T_older_key, dtype=np.float64)
        graph = gtsam.NonlinearFactorGraph()
        graph.add(gtsam.BetweenFactorPose3(older, key, gtsam.Pose3(T),
                                           self._noise(covariance, self.loop_kernel, self.loop_kernel_scale)))
        self.loops.append((int(older), int(key), T.copy(), np.asarray(covariance, dtype=np.float64).copy()))
        self._update(graph, gtsam.Values(), iterations)

    def pose(self, key: int) -> np.ndarray:
        """Optimised pose (4, 4) of `key` in the map frame."""
        return self._estimate[key].copy()

    def covariance(self, key: int) -> np.ndarray:
        """Marginal covariance (6, 6) of `key`'s pose, ROS order (position, rotation), in the
        pose's own axes (GTSAM's convention), metres^2 and rad^2."""
        c = np.asarray(self._isam.marginalCovariance(key))
        back = np.argsort(_ROS_TO_GTSAM)
        return c[np.ix_(back, back)]

    # ---------------------------------------------------------------- files
    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """The graph as plain arrays and a JSON-able dict (for a map file; no pickle):
        keys (N,) int64 and poses (N, 16) the optimised poses; odometry_keys / loop_keys
        (M, 2) int64 [from, to], odometry_T / loop_T (M, 16) the measurements, odometry_cov /
        loop_cov (M, 36) their covariances (ROS order); the dict holds the first key and the
        noise settings."""
        keys = self.keys

        def factors(items):
            return (np.array([(a, b) for a, b, _, _ in items], np.int64).reshape(-1, 2),
                    np.array([T.ravel() for _, _, T, _ in items], np.float64).reshape(-1, 16),
                    np.array([c.ravel() for _, _, _, c in items], np.float64).reshape(-1, 36))
        arrays = {'keys': np.array(keys, np.int64),
                  'poses': np.array([self._estimate[k].ravel() for k in keys], np.float64).reshape(-1, 16)}
        for name, items in (('odometry', self.odometry), ('loop', self.loops)):
            arrays[f'{name}_keys'], arrays[f'{name}_T'], arrays[f'{name}_cov'] = factors(items)
        meta = {'first_key': self.first_key, 'loop_kernel': self.loop_kernel,
                'loop_kernel_scale': self.loop_kernel_scale,
                'odometry_kernel_scale': self.odometry_kernel_scale, 'min_sigma': self.min_sigma}
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict) -> 'PoseGraph':
        """The graph `to_arrays` wrote: every factor again, started from the saved poses and
        optimised once (so the poses come back as saved). Raises PoseGraphError naming what
        is missing or inconsistent."""
        try:
            keys = np.asarray(arrays['keys'], np.int64).reshape(-1)
            poses = np.asarray(arrays['poses'], np.float64).reshape(len(keys), 4, 4)
            factors = {}
            for name in ('odometry', 'loop'):
                pairs = np.asarray(arrays[f'{name}_keys'], np.int64).reshape(-1, 2)
                factors[name] = (pairs, np.asarray(arrays[f'{name}_T'], np.float64).reshape(len(pairs), 4, 4),
                                 np.asarray(arrays[f'{name}_cov'], np.float64).reshape(len(pairs), 6, 6))
            graph = cls(meta['loop_kernel'], float(meta['loop_kernel_scale']),
                        float(meta['odometry_kernel_scale']), float(meta['min_sigma']))
            first = int(meta['first_key'])
        except (KeyError, ValueError, TypeError) as error:
            raise PoseGraphError(f'the saved pose graph is incomplete: {type(error).__name__}: {error}') from None
        if len(set(keys.tolist())) != len(keys) or first not in keys:
            raise PoseGraphError(f'the saved pose graph keys are repeated or lack the first key {first}')
        for what, T in (('poses', poses), ('odometry_T', factors['odometry'][1]), ('loop_T', factors['loop'][1])):
            bad = non_rigid(T)
            if bad.any():
                raise PoseGraphError(f'{what}[{int(np.argmax(bad))}] of the saved pose graph is not a finite rigid transform')
        for what, cov in (('odometry_cov', factors['odometry'][2]), ('loop_cov', factors['loop'][2])):
            if not np.all(np.isfinite(cov)) or any(np.linalg.eigvalsh(0.5 * (c + c.T)).min() < 0 for c in cov):
                raise PoseGraphError(f'{what} of the saved pose graph holds a covariance that is not finite '
                                     'positive semi-definite')
        known = set(keys.tolist())
        for name, (pairs, _, _) in factors.items():
            unknown = sorted(set(pairs.ravel().tolist()) - known)
            if unknown:
                raise PoseGraphError(f'{name} factors name poses not in the graph: {unknown[:5]}')
        try:
            gtsam = graph._gtsam
            factor_graph, values = gtsam.NonlinearFactorGraph(), gtsam.Values()
            saved = dict(zip(keys.tolist(), poses))
            factor_graph.add(gtsam.PriorFactorPose3(first, gtsam.Pose3(saved[first]),
                                                    gtsam.noiseModel.Diagonal.Sigmas(np.full(6, 1e-6))))
            for key, T in saved.items():
                values.insert(key, gtsam.Pose3(T))
            for name, (pairs, Ts, covs) in factors.items():
                kernel, scale = (('huber', graph.odometry_kernel_scale) if name == 'odometry'
                                 else (graph.loop_kernel, graph.loop_kernel_scale))
                target = graph.odometry if name == 'odometry' else graph.loops
                for (a, b), T, cov in zip(pairs.tolist(), Ts, covs):
                    factor_graph.add(gtsam.BetweenFactorPose3(a, b, gtsam.Pose3(T), graph._noise(cov, kernel, scale)))
                    target.append((int(a), int(b), T.copy(), cov.copy()))
            graph.first_key = first
            graph._update(factor_graph, values)
        except RuntimeError as error:   # GTSAM: a pose that is not a rotation, a covariance not positive
            raise PoseGraphError(f'the saved pose graph cannot be rebuilt: {error}') from None
        return graph


class PoseGraphError(ValueError):
    """A saved pose graph that cannot be rebuilt (names what is wrong)."""
