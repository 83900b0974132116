"""Input checks of the warp renderer: a reference image, landmarks and a reference clip's frames, with
messages that say what to pass instead."""

from __future__ import annotations

import numpy as np

from omnitalker.render.geometry import NUM_LANDMARKS


def check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"reference_image must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(
            f"reference_image must be uint8 (0-255), got {image.dtype}; convert it first, e.g. "
            "(img / 257).astype(np.uint8) for 16-bit or (img * 255).round().astype(np.uint8) for floats in [0, 1]"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # RGBA: the colour channels (alpha is not used for a photo)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"reference_image must be (H, W, 3) RGB (gray and RGBA are converted), got shape {image.shape}")
    if min(image.shape[:2]) < 16:
        raise ValueError(f"reference_image is too small ({image.shape[1]}x{image.shape[0]}); it needs a visible face")
    return np.ascontiguousarray(image)


def check_landmarks(landmarks, leading: tuple[int, ...], name: str) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.ndim == len(leading) + 2 and landmarks.shape[-1] == 2:
        landmarks = np.concatenate([landmarks, np.zeros_like(landmarks[..., :1])], axis=-1)
    expected = "(" + ", ".join(["T"] * len(leading) + [str(NUM_LANDMARKS), "3"]) + ")"
    if landmarks.ndim != len(leading) + 2 or landmarks.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"{name} must have shape {expected} (MediaPipe Face Mesh with iris points, pixel "
                         f"coordinates), got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError(f"{name} contains NaN or inf; interpolate or drop the frames where no face was found")
    return landmarks



def check_frames(frames, frame_landmarks, shape: tuple[int, ...]):
    """Optional reference-clip frames (K, H, W, 3) uint8 + landmarks (K, 478, 3), same size as the image."""
    if frames is None and frame_landmarks is None:
        return None, None
    if frames is None or frame_landmarks is None:
        raise ValueError("frames and frame_landmarks go together: pass both or neither")
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != tuple(shape):
        raise ValueError(f"frames must be (K, {shape[0]}, {shape[1]}, 3) uint8 like the reference image, "
                         f"got {frames.shape} {frames.dtype}")
    frame_landmarks = check_landmarks(frame_landmarks, (0,), "frame_landmarks")
    if len(frame_landmarks) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(frame_landmarks)} frame_landmarks")
    return frames, frame_landmarks
