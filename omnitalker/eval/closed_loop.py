"""Closed-loop check of the face renderer: codes -> frames -> landmarks -> codes.

(a) Animate a real photo (scikit-image's public-domain astronaut) with a known code sequence (yaw and
    pitch sweeps, jaw opening, blinks, gaze shifts), render it with `WarpRenderer`, find the face again
    with `FaceAnalyzer` (MediaPipe) and encode it with the photo's identity. Reports pose error (deg),
    expression error and eye error against the input codes, next to the same numbers for the codec
    alone (decode -> encode, no pixels) so the renderer's share is visible.
(b) Make a talking video (the astronaut rendered with a speech-like code sequence, written as H.264 mp4
    with PyAV), extract its codes, re-render it from its own codes with its frame 0 as the reference,
    and report landmark error (px) and PSNR against the video.

    python -m omnitalker.eval.closed_loop                 # 512^2 crop, 90 + 90 frames, prints a table
    python -m omnitalker.eval.closed_loop --size 256 --frames 30 --json results.json

Measured (defaults: 512^2, 90 + 90 frames; 2-core CPU; the codec alone is exact on these codes):
  (a) correlation with the input: yaw 0.997, pitch 0.979, mouth 0.981, gaze x 0.934, blink 0.942.
  (b) landmark error mean 0.81 px (p95 1.80 px); PSNR 34.47 dB full frame, 28.44 dB on the face crop (41.39 /
      35.42 dB with mouth_fill=False: the difference is the mouth interior, drawn from frame 0's own mouth in
      the re-render but from the photo's in the video).
The "talking video" of (b) is itself rendered from the astronaut (no real talking video ships with the
project); run the same steps on a real clip to measure the renderer on real motion.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from omnitalker.frontend.face import (
    EXP_SLICE,
    EXPRESSION_POINTS,
    EYE_SLICE,
    VIDEO_FPS,
    FaceAnalyzer,
    FaceIdentity,
    decode_codes,
    encode_codes,
)
from omnitalker.frontend.face.template import LEFT_EYE, RIGHT_EYE
from omnitalker.io.export import export_to_video
from omnitalker.io.video import read_video
from omnitalker.render.warp import WarpRenderer

EXPRESSION_INDEX = {name: i for i, (name, _) in enumerate(EXPRESSION_POINTS)}  # point -> row in the exp block
AXES = {"x": 0, "y": 1, "z": 2}

# Motion of the synthetic sequences (part a). Angles in degrees, lengths in face-size units (the
# outer-eye-corner distance) or eye widths for gaze.
YAW_AMPLITUDE_DEG = 15.0
PITCH_AMPLITUDE_DEG = 10.0
ROLL_AMPLITUDE_DEG = 4.0
JAW_OPEN_MAX = 0.12  # lower lip and chin move down this far at most (a wide-open mouth)
GAZE_AMPLITUDE = 0.12  # iris shift in eye widths
BLINK_FRAMES = 7  # one blink: close and reopen
SYLLABLE_HZ = 4.0  # mouth opening rate of the talking video (part b)
SEED = 0


def exp_column(point: str, axis: str) -> int:
    """Column of one expression coordinate inside the full 58-dim code."""
    return EXP_SLICE.start + 3 * EXPRESSION_INDEX[point] + AXES[axis]


def lid_gaps(identity: FaceIdentity) -> dict[str, float]:
    """Neutral upper-to-lower lid distance (canonical y) per eye."""
    neutral = identity.neutral
    return {"right": float(neutral[RIGHT_EYE[3], 1] - neutral[RIGHT_EYE[2], 1]),
            "left": float(neutral[LEFT_EYE[3], 1] - neutral[LEFT_EYE[2], 1])}


def apply_jaw(codes: np.ndarray, opening: np.ndarray) -> None:
    """Open the mouth by `opening` (T,) face-size units: lower lip and chin down (in place)."""
    for point, share in (("lower_lip_inner", 1.0), ("lower_lip_outer", 0.95), ("chin", 0.8)):
        codes[:, exp_column(point, "y")] += share * opening


def apply_blinks(codes: np.ndarray, closure: np.ndarray, identity: FaceIdentity) -> None:
    """Lower both upper lids by `closure` (T,) in [0, 1] of the neutral opening (in place)."""
    gaps = lid_gaps(identity)
    for side in ("right", "left"):
        codes[:, exp_column(f"upper_lid_{side}", "y")] += closure * gaps[side] * 0.95


def blink_profile(num_frames: int, starts: list[int]) -> np.ndarray:
    closure = np.zeros(num_frames)
    shape = np.sin(np.linspace(0, np.pi, BLINK_FRAMES))
    for start in starts:
        end = min(start + BLINK_FRAMES, num_frames)
        closure[start:end] = np.maximum(closure[start:end], shape[: end - start])
    return closure


def motion_sequence(base: np.ndarray, identity: FaceIdentity, num_frames: int) -> np.ndarray:
    """Part (a): yaw sweep, then pitch sweep, with jaw opening, blinks and gaze shifts on top."""
    t = np.linspace(0.0, 1.0, num_frames)
    codes = np.repeat(base[None].astype(np.float64), num_frames, axis=0)
    half = t < 0.5
    codes[:, 0] += np.where(half, np.deg2rad(YAW_AMPLITUDE_DEG) * np.sin(4 * np.pi * t), 0.0)
    codes[:, 1] += np.where(half, 0.0, np.deg2rad(PITCH_AMPLITUDE_DEG) * np.sin(4 * np.pi * t))
    codes[:, 2] += np.deg2rad(ROLL_AMPLITUDE_DEG) * np.sin(2 * np.pi * t)
    apply_jaw(codes, JAW_OPEN_MAX * np.clip(np.sin(6 * np.pi * t), 0.0, None))
    apply_blinks(codes, blink_profile(num_frames, [num_frames // 5, (3 * num_frames) // 5]), identity)
    gaze = GAZE_AMPLITUDE * np.sin(2 * np.pi * 1.5 * t)
    codes[:, EYE_SLICE.start] += gaze
    codes[:, EYE_SLICE.start + 2] += gaze
    codes[:, EYE_SLICE.start + 1] += 0.5 * GAZE_AMPLITUDE * np.sin(2 * np.pi * 0.75 * t)
    codes[:, EYE_SLICE.start + 3] += 0.5 * GAZE_AMPLITUDE * np.sin(2 * np.pi * 0.75 * t)
    return codes.astype(np.float32)


def talking_sequence(base: np.ndarray, identity: FaceIdentity, num_frames: int, fps: float) -> np.ndarray:
    """Part (b): speech-like jaw motion, small head motion, blinks (a stand-in for a real talking video)."""
    rng = np.random.default_rng(SEED)
    t = np.arange(num_frames) / fps
    codes = np.repeat(base[None].astype(np.float64), num_frames, axis=0)
    phases = rng.uniform(0, 2 * np.pi, 4)
    codes[:, 0] += np.deg2rad(6.0) * np.sin(2 * np.pi * 0.4 * t + phases[0])
    codes[:, 1] += np.deg2rad(4.0) * np.sin(2 * np.pi * 0.6 * t + phases[1])
    codes[:, 2] += np.deg2rad(2.0) * np.sin(2 * np.pi * 0.3 * t + phases[2])
    syllables = np.clip(np.sin(2 * np.pi * SYLLABLE_HZ * t + phases[3]), 0.0, None) ** 1.5
    apply_jaw(codes, 0.7 * JAW_OPEN_MAX * syllables * rng.uniform(0.5, 1.0, num_frames).round(1))
    apply_blinks(codes, blink_profile(num_frames, [int(fps * 1.1)]), identity)
    return codes.astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-12))


def correlation(estimate: np.ndarray, target: np.ndarray) -> float:
    """Pearson correlation; a flat series correlates 1 with a flat target and 0 with a moving one."""
    if np.ptp(estimate) == 0 or np.ptp(target) == 0:
        return float(np.ptp(estimate) == np.ptp(target))
    return float(np.corrcoef(estimate, target)[0, 1])


def code_errors(estimated: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean / max absolute errors per stream: pose angles in degrees, exp in face-size units, eye in eye widths."""
    angles = np.degrees(np.abs(estimated[:, :3] - target[:, :3]))  # t 3
    exp = np.abs(estimated[:, EXP_SLICE] - target[:, EXP_SLICE])
    eye = np.abs(estimated[:, EYE_SLICE] - target[:, EYE_SLICE])
    opening = ("lower_lip_inner", "y"), ("upper_lip_inner", "y")
    mouth_est = estimated[:, exp_column(*opening[0])] - estimated[:, exp_column(*opening[1])]
    mouth_tgt = target[:, exp_column(*opening[0])] - target[:, exp_column(*opening[1])]
    out = {}
    for name, column in (("yaw", 0), ("pitch", 1), ("roll", 2)):
        out[f"{name}_deg_mean"] = float(angles[:, column].mean())
        out[f"{name}_deg_max"] = float(angles[:, column].max())
    out.update(exp_mean=float(exp.mean()), exp_max=float(exp.max()), eye_mean=float(eye.mean()),
               eye_max=float(eye.max()), mouth_opening_mean=float(np.abs(mouth_est - mouth_tgt).mean()),
               mouth_opening_max=float(np.abs(mouth_est - mouth_tgt).max()),
               mouth_opening_range=float(np.ptp(mouth_tgt)))
    # Does the recovered signal follow the input at all? (an error alone cannot tell a small motion apart)
    lids = [exp_column(f"upper_lid_{side}", "y") for side in ("right", "left")]
    tracks = {"yaw": (estimated[:, 0], target[:, 0]), "pitch": (estimated[:, 1], target[:, 1]),
              "mouth": (mouth_est, mouth_tgt),
              "gaze_x": (estimated[:, EYE_SLICE.start::2].mean(1), target[:, EYE_SLICE.start::2].mean(1)),
              "blink": (estimated[:, lids].mean(1), target[:, lids].mean(1))}
    for name, (est, tgt) in tracks.items():
        out[f"{name}_corr"] = correlation(est, tgt)
    return out


@dataclass
class ClosedLoopReport:
    output_size: int
    frames_a: int
    render_fps_a: float
    codec_only: dict  # decode -> encode without pixels (the floor the renderer cannot beat)
    rendered: dict  # decode -> render -> detect -> encode
    detected_fraction_a: float
    frames_b: int
    landmark_error_px_mean: float
    landmark_error_px_p95: float
    psnr_mean_db: float
    psnr_face_mean_db: float
    detected_fraction_b: float
    seconds: float


def run_closed_loop(output_size: int = 512, num_frames: int = 90, talking_frames: int = 90,
                    workdir: str | Path | None = None, image: np.ndarray | None = None) -> ClosedLoopReport:
    """Both checks; `image` defaults to the astronaut photo."""
    start = time.perf_counter()
    if image is None:
        from skimage import data

        image = data.astronaut()
    renderer = WarpRenderer(output_size=output_size)
    analyzer = FaceAnalyzer()

    # ---- (a) known codes -> render -> codes
    track = analyzer.analyze_image(image)
    if not track.detected.all():
        raise ValueError("no face found in the reference image")
    identity = FaceIdentity.from_track(track)
    base = encode_codes(track.landmarks, identity)[0]
    codes = motion_sequence(base, identity, num_frames)
    driven = decode_codes(codes, identity)
    reference = renderer.prepare(image, track.landmarks[0])
    tick = time.perf_counter()
    frames = renderer.render(reference, driven)
    render_fps = num_frames / (time.perf_counter() - tick)
    found = analyzer.analyze_video(frames, fps=VIDEO_FPS)
    rendered = code_errors(encode_codes(found.landmarks, identity), codes)
    codec_only = code_errors(encode_codes(driven, identity), codes)

    # ---- (b) talking video -> its codes -> re-render from frame 0
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "talking.mp4"
        talking_codes = talking_sequence(base, identity, talking_frames, VIDEO_FPS)
        export_to_video(renderer.render(reference, decode_codes(talking_codes, identity)), path, fps=int(VIDEO_FPS))
        video_track = analyzer.analyze_video(str(path))
        video = read_video(path).frames
    video_identity = FaceIdentity.from_track(video_track)
    video_codes = encode_codes(video_track.landmarks, video_identity)
    replay = decode_codes(video_codes, video_identity)
    # The reference landmarks come from the same decoder as the driven ones, so the warp at frame 0
    # is the identity and only the motion relative to frame 0 is rendered.
    video_reference = renderer.prepare(video[0], replay[0])
    rerendered = renderer.render(video_reference, replay)
    replay_track = analyzer.analyze_video(rerendered, fps=VIDEO_FPS)
    errors = np.linalg.norm(replay_track.landmarks[..., :2] - video_track.landmarks[..., :2], axis=-1)
    x0, y0 = (max(int(v), 0) for v in video_reference.crop_origin)
    face = (slice(y0, y0 + video_reference.crop_size), slice(x0, x0 + video_reference.crop_size))
    analyzer.close()
    return ClosedLoopReport(
        output_size=output_size, frames_a=num_frames, render_fps_a=render_fps, codec_only=codec_only,
        rendered=rendered, detected_fraction_a=found.detected_fraction, frames_b=len(video),
        landmark_error_px_mean=float(errors.mean()), landmark_error_px_p95=float(np.percentile(errors, 95)),
        psnr_mean_db=float(np.mean([psnr(a, b) for a, b in zip(rerendered, video, strict=True)])),
        psnr_face_mean_db=float(np.mean([psnr(a[face], b[face]) for a, b in zip(rerendered, video, strict=True)])),
        detected_fraction_b=min(video_track.detected_fraction, replay_track.detected_fraction),
        seconds=time.perf_counter() - start,
    )


def format_report(report: ClosedLoopReport) -> str:
    lines = [f"closed loop, {report.output_size}^2 crop, (a) {report.frames_a} frames "
             f"(rendered at {report.render_fps_a:.1f} fps), faces found in {report.detected_fraction_a:.0%}"]
    lines.append(f"{'error':<28}{'codec only':>14}{'rendered':>14}")
    for key in report.rendered:
        if key == "mouth_opening_range":
            continue
        lines.append(f"{key:<28}{report.codec_only[key]:>14.4f}{report.rendered[key]:>14.4f}")
    lines.append(f"(mouth opening range of the input: {report.rendered['mouth_opening_range']:.3f} face units; "
                 "exp/mouth in face units, eye in eye widths)")
    lines.append(f"(b) talking video, {report.frames_b} frames re-rendered from its own codes, frame 0 as reference:")
    lines.append(f"  landmark error mean {report.landmark_error_px_mean:.2f} px, p95 {report.landmark_error_px_p95:.2f} px")
    lines.append(f"  PSNR full frame {report.psnr_mean_db:.2f} dB, face crop {report.psnr_face_mean_db:.2f} dB")
    lines.append(f"total {report.seconds:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="renderer output_size (crop side)")
    parser.add_argument("--frames", type=int, default=90, help="frames of each sequence")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if args.frames < 2:
        raise SystemExit("--frames must be at least 2")
    report = run_closed_loop(output_size=args.size, num_frames=args.frames, talking_frames=args.frames)
    print(format_report(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(report), indent=2))


if __name__ == "__main__":
    main()
