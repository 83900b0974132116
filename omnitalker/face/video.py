"""Reading frames for face analysis: videos with PyAV at their native rate, images in any pixel format.

    frames = read_video("talk.mp4")          # VideoFrames: (T, H, W, 3) uint8 RGB, fps, timestamps
    image = load_image("photo.png")          # (H, W, 3) uint8 RGB from gray/RGBA/16-bit/float input

Videos are decoded frame by frame with their own timestamps (presentation times), so any rate
(25, 29.97, 22.13 ...) and variable frame rates come through as recorded; ``fps`` is the mean
rate. A rotation in the container's display matrix (phone videos) is applied so faces are upright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

UINT16_TO_UINT8 = 257.0  # 65535 / 255
RIGHT_ANGLE = 90
VFR_TOLERANCE = 0.1  # frame intervals varying more than 10 % around the median: variable frame rate


@dataclass
class VideoFrames:
    """Decoded video: frames (T, H, W, 3) uint8 RGB, fps (mean rate), timestamps (T,) seconds from 0."""

    frames: np.ndarray
    fps: float
    timestamps: np.ndarray
    rotation: int = 0  # degrees counter-clockwise applied from the display matrix
    warnings: list[str] = field(default_factory=list)

    @property
    def variable_frame_rate(self) -> bool:
        if len(self.timestamps) < 3:
            return False
        intervals = np.diff(self.timestamps)
        return bool(np.abs(intervals - np.median(intervals)).max() > VFR_TOLERANCE * np.median(intervals))


def to_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Normalise an array to (H, W, 3) uint8 RGB.

    Accepts gray (H, W) or (H, W, 1), RGB, RGBA (alpha dropped: the face analysis needs the pixels,
    not the transparency), uint8, uint16 (16-bit PNG/TIFF), bool, and floats in [0, 1] (or [0, 255]
    when the maximum exceeds 1).
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(
            f"{name} must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) pixels, got shape {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.bool_:
        return np.ascontiguousarray(image.astype(np.uint8) * 255)
    if image.dtype == np.uint16:
        return np.ascontiguousarray(np.round(image / UINT16_TO_UINT8).astype(np.uint8))
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError(f"{name} contains NaN/inf pixels")
        peak = 255.0 if image.max() > 1.0 else 1.0
        return np.ascontiguousarray(np.clip(np.round(image / peak * 255.0), 0, 255).astype(np.uint8))
    if np.issubdtype(image.dtype, np.integer):
        return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))
    raise ValueError(f"{name} has unsupported pixel type {image.dtype}; use uint8, uint16 or float")


def load_image(image) -> np.ndarray:
    """A path, PIL image or array -> (H, W, 3) uint8 RGB (see ``to_rgb_uint8``)."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image file {path} does not exist")
        import cv2

        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # keeps 16 bits and alpha
        if pixels is None:
            raise ValueError(f"could not read {path} as an image (PNG, JPEG, TIFF, BMP, WebP ...)")
        if pixels.ndim == 3:  # OpenCV orders channels BGR(A)
            pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[-1]]]
        return to_rgb_uint8(pixels, name=str(path))
    if hasattr(image, "mode") and hasattr(image, "size"):  # PIL.Image without importing PIL
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return to_rgb_uint8(np.asarray(image).astype(np.uint16), name="image")
        return to_rgb_uint8(np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB")), name="image")
    return to_rgb_uint8(image)


def rotate_upright(frame: np.ndarray, degrees_ccw: int) -> np.ndarray:
    """Apply a container's display rotation (degrees counter-clockwise, nearest multiple of 90)."""
    return np.ascontiguousarray(np.rot90(frame, k=(degrees_ccw // RIGHT_ANGLE) % 4))


def read_video(path: str | Path, max_seconds: float | None = None) -> VideoFrames:
    """Decode every video frame of `path` (up to `max_seconds`) as RGB with its timestamp.

    Problems that do not stop decoding (rotation applied, variable frame rate, a corrupt tail) are
    listed in ``VideoFrames.warnings``.
    """
    import av

    from omnitalker.io.video import RGBConverter

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"video file {path} does not exist")
    notes: list[str] = []
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(
            f"could not read {path} as a video ({error}). Use a video file such as .mp4, .mov, .mkv, .webm"
        ) from error
    with container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream (audio only?); a video of the speaker is needed")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames, times, rotation = [], [], 0
        converter = RGBConverter()
        try:
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else len(frames) / float(stream.average_rate or 1)
                if max_seconds is not None and times and time - times[0] >= max_seconds:
                    break
                if not frames:
                    rotation = int(frame.rotation or 0) if hasattr(frame, "rotation") else 0
                pixels = converter.to_rgb(frame)
                frames.append(rotate_upright(pixels, rotation) if rotation % 360 else pixels)
                times.append(float(time))
        except av.error.FFmpegError as error:
            if not frames:
                raise ValueError(f"could not decode any frame of {path} ({error})") from error
            notes.append(
                f"decoding stopped at frame {len(frames)} with an error ({error}); using the frames read"
            )
    if not frames:
        raise ValueError(f"{path} contains no video frames")
    if rotation % RIGHT_ANGLE:
        notes.append(f"display rotation {rotation} deg is not a multiple of 90; applied the nearest")
    elif rotation % 360:
        notes.append(f"applied the container's display rotation ({rotation} deg counter-clockwise)")

    timestamps = np.asarray(times, dtype=np.float64)
    order = np.argsort(timestamps, kind="stable")  # B-frames may come out of presentation order
    frames = [frames[i] for i in order]
    timestamps = timestamps[order] - timestamps[order[0]]
    if len(frames) > 1 and np.any(np.diff(timestamps) <= 0):
        keep = np.concatenate([[True], np.diff(timestamps) > 0])  # drop duplicated timestamps
        frames = [f for f, k in zip(frames, keep, strict=True) if k]
        timestamps = timestamps[keep]
    if len(frames) > 1:
        fps = (len(frames) - 1) / float(timestamps[-1])
    else:
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        if fps <= 0:
            raise ValueError(f"{path} has a single frame and no frame rate")
    result = VideoFrames(np.stack(frames), fps, timestamps, rotation, notes)
    if result.variable_frame_rate:
        result.warnings.append(f"variable frame rate (mean {fps:.2f} fps); frame timestamps are used")
    return result
