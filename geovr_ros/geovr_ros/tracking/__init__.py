"""Geometric tracking on learned depth (pure core: numpy + OpenCV, no rclpy).

Frame-to-keyframe tracking against a keyframe whose ORB keypoints carry 3D points from the
keyframe's depth (the model's, or a sensor's): the keypoints followed from frame to frame by
Lucas-Kanade optical flow (the default), or the current frame's ORB features matched to them
(also when the flow gives no pose); the pose predicted by the motion model is refined on
those correspondences (Levenberg-Marquardt), or solved by PnP with RANSAC when the prediction
does not hold. When neither gives a pose, the search starts once more from the turn that the
whole image's shift says (phase correlation; `tracking.shift`). The learned
relative pose is the fallback when tracking fails, with the reason. Keyframe depth is
aligned to the map's scale from the tracked points before it is used. Points tracked into a
new keyframe carry on as the same landmarks, and the last keyframes and the points they share
are bundle-adjusted together after each new keyframe (`tracking.window`, `tracking.bundle`),
the model's depth a prior.

    from geovr_ros.tracking import KeyframeTracker
    tracker = KeyframeTracker()
    step = tracker.track(gray, K, depth, depth_K, fallback_T_prev_cur)   # TrackingStep
"""
from geovr_ros.tracking.features import FeatureSet, extract_features, match_features
from geovr_ros.tracking.pnp import PnPSolution, PoseUncertainty, refine_pnp, solve_pnp
from geovr_ros.tracking.tracker import Keyframe, KeyframeTracker, TrackerConfig, TrackingStep

__all__ = ['FeatureSet', 'Keyframe', 'KeyframeTracker', 'PnPSolution', 'PoseUncertainty', 'TrackerConfig', 'TrackingStep',
           'extract_features', 'match_features', 'refine_pnp', 'solve_pnp']
