"""Face analysis for omnitalker: landmarks, tracking, visual codes, plots.

    from omnitalker.frontend.face import FaceAnalyzer, FaceIdentity, encode_codes, decode_codes
    track = FaceAnalyzer().analyze_video("reference.mp4")       # 478 MediaPipe points per frame
    identity = FaceIdentity.from_track(track)
    codes = encode_codes(track.landmarks, identity)             # (T, 58) pose | exp | eye
    codes_30 = track_to_codes(track, identity)                   # the same at 30 fps, smoothed
    points = decode_codes(codes, identity)                       # (T, 478, 3) pixels

The code layout is documented in omnitalker/frontend/face/codes.py.
"""

from .codes import (
    CODE_FPS,
    CODE_NAMES,
    EXP_SLICE,
    EYE_SLICE,
    MEL_FPS,
    POSE_SLICE,
    VIDEO_FPS,
    VISUAL_CODE_DIM,
    FaceIdentity,
    decode_codes,
    encode_codes,
    euler_to_rotation,
    fit_pose,
    resample_codes,
    rotation_to_euler,
    smooth_codes,
    track_to_codes,
)
from .landmarks import FaceAnalyzer, FaceTrack
from .template import EXPRESSION_POINTS, NUM_LANDMARKS, FaceTemplate, load_face_template

__all__ = [
    "CODE_FPS",
    "CODE_NAMES",
    "EXPRESSION_POINTS",
    "EXP_SLICE",
    "EYE_SLICE",
    "MEL_FPS",
    "NUM_LANDMARKS",
    "POSE_SLICE",
    "VIDEO_FPS",
    "VISUAL_CODE_DIM",
    "FaceAnalyzer",
    "FaceIdentity",
    "FaceTemplate",
    "FaceTrack",
    "decode_codes",
    "encode_codes",
    "euler_to_rotation",
    "fit_pose",
    "load_face_template",
    "resample_codes",
    "rotation_to_euler",
    "smooth_codes",
    "track_to_codes",
]
