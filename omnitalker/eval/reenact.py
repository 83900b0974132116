"""Self-reenactment of real clips: how faithfully a renderer redraws a person from their own motion.

LivePortrait's protocol on our codes: for each clip, MediaPipe tracks the true frames, the landmarks are
encoded to visual codes (``encode_codes``; with ``--smooth`` also ``smooth_codes``, as the pipeline does for a
reference, which removes the fast part of real motion the truth still has), and the renderer redraws the clip
from those codes, starting from

- ``photo``: the clip's first frame alone (the pipeline's photo reference), and
- ``video``: the clip's first ``--reference-seconds`` (the pipeline's video reference: its identity, its
  neutral frame, and the frames themselves for what one frame cannot show),

beside the baseline ``still``: the first frame repeated (a renderer that does not move).
Rendered and true frames are compared on boxes taken from the *true* frame's landmarks:

- ``face``: a square around the face mesh; ``mouth``: around the lips; ``eyes``: around each eye opening
  (the two eyes averaged). PSNR (dB) and SSIM (scikit-image, on the box resized to a fixed size).
- ``flicker``: mean absolute change of the face box between consecutive frames, rendered over true.
- ``mouth_corr`` / ``eye_corr``: correlation over time of the inner-lip gap and of the eye openness
  (lid gap over eye width) that MediaPipe measures on the rendered frames against the true ones
  (eye_corr is reported for clips whose truth blinks); ``mouth_gain`` / ``eye_gain``: the least-squares slope of
  the rendered measure on the true one (1: a movement drawn as large as it was; a shallow blink reads < 1).

Photo mode is scored on the ``--frames`` frames after the first (the reference itself, where the still frame
would score an infinite PSNR); the photo/video comparison (``heldout``: the boxes and the motion scores) on the
frames after the video reference window, where neither mode has seen the truth.

    python -m omnitalker.eval.reenact --clips ../shared/media/faces/clips --json bench/results/reenact.json
    python -m omnitalker.eval.reenact --clips ../shared/media/faces/clips --smooth --json bench/results/reenact_smoothed.json
    python -m omnitalker.eval.reenact --clips DIR --only d3 d10 --frames 60 --size 256
    python -m omnitalker.eval.reenact --clips DIR --renderer warp weights/liveportrait   # both renderers, one run

The clips are real people's videos: they are read, never written anywhere (no frames are saved).
"""

from __future__ import annotations

import argparse
import ast
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from omnitalker.eval.closed_loop import psnr
from omnitalker.frontend.face import FaceAnalyzer, FaceIdentity, encode_codes
from omnitalker.frontend.face.codes import eye_openness, smooth_codes
from omnitalker.frontend.face.template import LEFT_EYE, RIGHT_EYE
from omnitalker.io.video import read_video
from omnitalker.render.choose import RENDERER_CHOICES_HELP, WARP, load_renderer
from omnitalker.render.warp import NUM_MESH_VERTICES, WarpRenderer, mesh_topology

DEFAULT_FRAMES = 150
REFERENCE_SECONDS = 2.0  # video mode: the reference window at the start of each clip
FACE_MARGIN = 1.15  # face box side = this x the mesh's larger extent
MOUTH_MARGIN = 0.35  # mouth box: lips' extent + this x mouth width on each side
EYE_MARGIN = 0.35  # eye box: the eye contour's extent + this x eye width on each side
BOX_SIZES = {"face": 256, "mouth": 96, "eyes": 64}  # each box is resized to this side before scoring
BLINK_DEPTH = 0.6  # a clip "blinks" when its eye openness dips below this share of its median
UPPER_LIP, LOWER_LIP, MOUTH_LEFT, MOUTH_RIGHT = 13, 14, 78, 308  # MediaPipe inner-lip points
MODES = ("still", "photo", "video")
HELDOUT_MOTION = ("mouth_corr", "mouth_gain", "eye_corr", "eye_gain")  # averaged over clips for the held-out window


@dataclass
class ReenactReference:
    """What a renderer's ``prepare_source`` reads from a pipeline reference (``OmniTalkerReference``)."""

    image: np.ndarray  # (H, W, 3) uint8: the frame the renderer warps
    landmarks: np.ndarray  # (478, 3) px of that frame
    identity: FaceIdentity
    frames: np.ndarray | None = None  # (K, H, W, 3) uint8: the reference clip's frames (video mode)
    frame_landmarks: np.ndarray | None = None  # (K, 478, 3) px


# ------------------------------------------------------------------------------------------------ boxes


def _square(center: np.ndarray, side: float, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """A square (x0, y0, x1, y1) clipped to the image; None if it falls outside."""
    half = side / 2
    x0, y0 = int(max(round(center[0] - half), 0)), int(max(round(center[1] - half), 0))
    x1, y1 = int(min(round(center[0] + half), shape[1])), int(min(round(center[1] + half), shape[0]))
    return (x0, y0, x1, y1) if x1 - x0 >= 4 and y1 - y0 >= 4 else None


def region_boxes(points: np.ndarray, shape: tuple[int, int]) -> dict[str, list]:
    """Boxes of one true frame's landmarks (478, 3): {"face": [box], "mouth": [box], "eyes": [box, box]}."""
    topo = mesh_topology()
    mesh = points[:NUM_MESH_VERTICES, :2]
    face = _square((mesh.min(0) + mesh.max(0)) / 2, FACE_MARGIN * np.ptp(mesh, axis=0).max(), shape)
    lips = points[topo.mouth_loop, :2]
    outer = points[[61, 291], :2]  # outer mouth corners
    mouth_width = float(np.hypot(*(outer[1] - outer[0])))
    mouth = _square(lips.mean(0), max(np.ptp(lips, axis=0).max(), mouth_width) + 2 * MOUTH_MARGIN * mouth_width, shape)
    eyes = []
    for loop, eye in zip(topo.eye_loops, (RIGHT_EYE, LEFT_EYE), strict=True):
        contour = points[loop, :2]
        width = float(np.hypot(*(points[eye[0], :2] - points[eye[1], :2])))
        eyes.append(_square(contour.mean(0), np.ptp(contour, axis=0).max() + 2 * EYE_MARGIN * width, shape))
    return {"face": [face], "mouth": [mouth], "eyes": eyes}


def _crop(image: np.ndarray, box, size: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    return cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)


def score_frames(rendered: np.ndarray, truth: np.ndarray, truth_landmarks: np.ndarray) -> dict[str, float]:
    """PSNR / SSIM per region and face flicker of rendered frames against the true ones."""
    sums: dict[str, list[float]] = {f"{r}_{m}": [] for r in BOX_SIZES for m in ("psnr", "ssim")}
    face_crops_r, face_crops_t = [], []
    for frame_r, frame_t, points in zip(rendered, truth, truth_landmarks, strict=True):
        for region, boxes in region_boxes(points, frame_t.shape[:2]).items():
            for box in boxes:
                if box is None:
                    continue
                a, b = _crop(frame_r, box, BOX_SIZES[region]), _crop(frame_t, box, BOX_SIZES[region])
                sums[f"{region}_psnr"].append(psnr(a, b))
                sums[f"{region}_ssim"].append(structural_similarity(a, b, channel_axis=2, data_range=255))
                if region == "face":
                    face_crops_r.append(a.astype(np.float32))
                    face_crops_t.append(b.astype(np.float32))
    scores = {k: float(np.mean(v)) if v else float("nan") for k, v in sums.items()}
    if len(face_crops_t) > 1:
        change_r = np.mean([np.abs(b - a).mean() for a, b in zip(face_crops_r[:-1], face_crops_r[1:], strict=True)])
        change_t = np.mean([np.abs(b - a).mean() for a, b in zip(face_crops_t[:-1], face_crops_t[1:], strict=True)])
        scores["flicker"] = float(change_r / max(change_t, 1e-6))
    return scores


# ------------------------------------------------------------------------------------------------ motion


def mouth_gap(landmarks: np.ndarray) -> np.ndarray:
    """(T,) inner-lip gap over mouth width."""
    gap = np.linalg.norm(landmarks[:, LOWER_LIP, :2] - landmarks[:, UPPER_LIP, :2], axis=-1)
    width = np.linalg.norm(landmarks[:, MOUTH_RIGHT, :2] - landmarks[:, MOUTH_LEFT, :2], axis=-1)
    return gap / np.maximum(width, 1e-6)


def has_blinks(openness: np.ndarray) -> bool:
    return bool(openness.min() < BLINK_DEPTH * np.median(openness))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _gain(rendered: np.ndarray, truth: np.ndarray) -> float:
    """Least-squares slope of the rendered measure on the true one: 1 when the renderer draws a movement as large
    as it was, < 1 when it draws it smaller (a shallow blink), > 1 larger (a mouth opened too wide)."""
    if len(truth) < 3 or truth.std() < 1e-9:
        return float("nan")
    return float(np.cov(rendered, truth)[0, 1] / truth.var(ddof=1))


def motion_scores(analyzer: FaceAnalyzer, rendered: np.ndarray, fps: float, truth_landmarks: np.ndarray) -> dict:
    """Mouth and eye motion that MediaPipe sees on the rendered frames, correlated with the truth's."""
    try:
        track = analyzer.analyze_video(list(rendered), fps=fps)
    except ValueError:  # MediaPipe finds no face in the rendered frames: nothing moves as the truth does
        return {"mouth_corr": float("nan"), "eye_corr": float("nan"), "mouth_gain": float("nan"),
                "eye_gain": float("nan"), "detected": 0.0}
    true_eyes, eyes = eye_openness(truth_landmarks), eye_openness(track.landmarks)
    true_mouth, mouth = mouth_gap(truth_landmarks), mouth_gap(track.landmarks)
    blinks = has_blinks(true_eyes)
    return {
        "mouth_corr": _corr(mouth, true_mouth),
        "eye_corr": _corr(eyes, true_eyes) if blinks else float("nan"),
        "mouth_gain": _gain(mouth, true_mouth),
        "eye_gain": _gain(eyes, true_eyes) if blinks else float("nan"),
        "detected": track.detected_fraction,
    }


# ------------------------------------------------------------------------------------------------ one clip


def reference_for(frames: np.ndarray, landmarks: np.ndarray, mode: str) -> ReenactReference:
    """The photo reference (first frame) or the video reference (all of `frames`, neutral frame warped)."""
    size = frames.shape[1:3]
    if mode == "photo":
        identity = FaceIdentity.from_landmarks(landmarks[:1], size)
        return ReenactReference(frames[0], landmarks[0], identity)
    identity = FaceIdentity.from_landmarks(landmarks, size)
    index = identity.reference_index
    return ReenactReference(frames[index], landmarks[index], identity, frames=frames, frame_landmarks=landmarks)


def render_clip(renderer, reference: ReenactReference, landmarks: np.ndarray, fps: float,
                smooth: bool = False) -> np.ndarray:
    codes = encode_codes(landmarks, reference.identity)
    if smooth:
        codes = smooth_codes(codes, fps=fps)
    source = renderer.prepare_source(reference)
    return renderer.render_codes(source, codes)


def evaluate_clip(path: Path, renderer, analyzer: FaceAnalyzer, num_frames: int,
                  reference_seconds: float, smooth: bool = False) -> dict:
    video = read_video(path, audio=False)
    fps = video.fps
    frames = np.stack(video.frames)
    track = analyzer.analyze_video(list(frames), fps=fps)
    landmarks = track.landmarks
    ref_frames = max(2, int(round(reference_seconds * fps)))
    # Frame 0 is the photo reference itself: scored, the still baseline would get an infinite PSNR there.
    window = slice(1, min(num_frames + 1, len(frames)))
    result: dict = {"clip": path.stem, "fps": fps, "frames": window.stop - window.start,
                    "detected": track.detected_fraction}

    heldout = slice(min(ref_frames, len(frames) - 2), min(ref_frames + num_frames, len(frames)))
    result["heldout_frames"] = heldout.stop - heldout.start
    started = time.perf_counter()
    rendered_photo = render_clip(renderer, reference_for(frames, landmarks, "photo"), landmarks, fps, smooth)
    video_ref = reference_for(frames[:ref_frames], landmarks[:ref_frames], "video")
    rendered_video = render_clip(renderer, video_ref, landmarks, fps, smooth)
    result["render_seconds"] = time.perf_counter() - started
    still = np.repeat(frames[:1], len(frames), axis=0)

    for mode, rendered in (("still", still), ("photo", rendered_photo)):
        scores = score_frames(rendered[window], frames[window], landmarks[window])
        if mode != "still":
            scores.update(motion_scores(analyzer, rendered[window], fps, landmarks[window]))
        result[mode] = scores
    for mode, rendered in (("still", still), ("photo", rendered_photo), ("video", rendered_video)):
        result.setdefault("heldout", {})[mode] = score_frames(rendered[heldout], frames[heldout], landmarks[heldout])
        if mode != "still":  # what MediaPipe sees move: the video mode draws blinks from the clip's own eyes
            result["heldout"][mode].update(motion_scores(analyzer, rendered[heldout], fps, landmarks[heldout]))
    result["eye_blinks"] = has_blinks(eye_openness(landmarks[window]))
    return result


# ------------------------------------------------------------------------------------------------ summary


def summarize(results: list[dict]) -> dict:
    """Means over clips, the face PSNR gain over the still frame, and the clips where the gain is <= 0."""
    def mean(values):
        values = [v for v in values if v == v]  # drop NaN
        return float(np.mean(values)) if values else float("nan")

    summary: dict = {}
    for mode in ("still", "photo"):
        keys = results[0][mode].keys()
        summary[mode] = {k: mean([r[mode][k] for r in results]) for k in keys}
    for key in ("eye_corr", "eye_gain"):
        summary["photo"][key] = mean([r["photo"].get(key, float("nan")) for r in results if r["eye_blinks"]])
    gains = {r["clip"]: r["photo"]["face_psnr"] - r["still"]["face_psnr"] for r in results}
    summary["face_psnr_gain"] = mean(list(gains.values()))
    summary["clips_below_still"] = sorted(c for c, g in gains.items() if g <= 0)
    summary["heldout"] = {m: {k: mean([r["heldout"][m][k] for r in results]) for k in ("face_ssim", "mouth_ssim",
                                                                                         "eyes_ssim", "mouth_psnr")}
                          for m in MODES}
    for m in ("photo", "video"):  # NaN where the held-out window does not blink (``motion_scores``): left out
        for key in HELDOUT_MOTION:
            summary["heldout"][m][key] = mean([r["heldout"][m].get(key, float("nan")) for r in results])
    return summary


def table(results: list[dict], summary: dict) -> str:
    lines = ["| clip | still face PSNR / SSIM | photo face PSNR / SSIM | mouth SSIM still / photo | eyes SSIM "
             "still / photo | mouth corr / gain | eye corr / gain | flicker | held-out mouth SSIM photo / video |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results + [dict(summary, clip="**mean**", still=summary["still"], photo=summary["photo"])]:
        s, p, nan = r["still"], r["photo"], float("nan")
        held = r["heldout"]
        lines.append(
            f"| {r['clip']} | {s['face_psnr']:.2f} / {s['face_ssim']:.3f} | {p['face_psnr']:.2f} / {p['face_ssim']:.3f} "
            f"| {s['mouth_ssim']:.3f} / {p['mouth_ssim']:.3f} | {s['eyes_ssim']:.3f} / {p['eyes_ssim']:.3f} "
            f"| {p.get('mouth_corr', nan):.2f} / {p.get('mouth_gain', nan):.2f} "
            f"| {p.get('eye_corr', nan):.2f} / {p.get('eye_gain', nan):.2f} "
            f"| {p.get('flicker', float('nan')):.2f} | {held['photo']['mouth_ssim']:.3f} / {held['video']['mouth_ssim']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, required=True, help="folder of real talking-head clips (*.mp4)")
    parser.add_argument("--only", nargs="*", default=None, help="clip names (stems) to run, default all")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames scored per clip")
    parser.add_argument("--reference-seconds", type=float, default=REFERENCE_SECONDS,
                        help="video mode: length of the reference window at the start of each clip")
    parser.add_argument("--renderer", nargs="+", default=[WARP], metavar="RENDERER",
                        help=f"one or more renderers, each scored on every clip: {RENDERER_CHOICES_HELP}")
    parser.add_argument("--size", type=int, default=512, help="renderer output_size")
    parser.add_argument("--smooth", action="store_true",
                        help="low-pass the codes as the pipeline does for a reference (smooth_codes)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="other WarpRenderer settings, e.g. --set crop_scale=2.8 'ring_follow=(1.0, 1.0)'")
    parser.add_argument("--json", type=Path, default=None, help="write per-clip results and the summary here")
    args = parser.parse_args(argv)
    if not args.clips.is_dir():
        parser.error(f"--clips {args.clips} is not a folder (the real clips live in ../shared/media/faces/clips)")
    if args.frames < 2:
        parser.error(f"--frames must be at least 2, got {args.frames}")
    paths = sorted(args.clips.glob("*.mp4"))
    if args.only:
        paths = [p for p in paths if p.stem in set(args.only)]
    if not paths:
        parser.error(f"no matching .mp4 clips in {args.clips}")

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parser.error(f"--set {item}: the value must be a Python literal (a number, a tuple, True/False)")
    renderers = {}
    for spec in args.renderer:
        try:
            renderers[spec] = (WarpRenderer(output_size=args.size, **overrides) if spec == WARP
                               else load_renderer(spec, output_size=args.size))
        except (TypeError, ValueError) as error:
            parser.error(f"--renderer {spec} / --set: {error}")
    runs = {}
    with FaceAnalyzer() as analyzer:
        for spec, renderer in renderers.items():
            results = []
            for path in paths:
                result = evaluate_clip(path, renderer, analyzer, args.frames, args.reference_seconds, args.smooth)
                print(f"[{spec}] {path.stem}: face {result['still']['face_psnr']:.2f} -> "
                      f"{result['photo']['face_psnr']:.2f} dB, mouth SSIM {result['photo']['mouth_ssim']:.3f}, "
                      f"eyes SSIM {result['photo']['eyes_ssim']:.3f}, eye corr {result['photo']['eye_corr']:.2f}",
                      flush=True)
                results.append(result)
            summary = summarize(results)
            print(f"renderer {spec}:\n{table(results, summary)}")
            runs[spec] = {"renderer": dict(renderer.config), "clips": results, "summary": summary}
    first = runs[args.renderer[0]]
    report = {"renderer": first["renderer"], "frames": args.frames, "reference_seconds": args.reference_seconds,
              "smooth": args.smooth, "machine": platform.processor() or platform.machine(),
              "clips": first["clips"], "summary": first["summary"]}
    if len(runs) > 1:
        report["renderers"] = runs
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return report


if __name__ == "__main__":
    main()
