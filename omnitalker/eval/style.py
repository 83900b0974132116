"""Style on real references: does the output move like the person in the reference clip?

For each real clip (``--clips``, e.g. ``../shared/media/faces/clips``) used as the reference video with a voice
sample (``--voice``; the clips' own sound is often not speech), the pipeline says ``--text`` (about 9 s) for each
of ``--seeds``. The same statistics are measured at four points of the chain, so a loss can be placed:

- ``reference``: MediaPipe on the clip's frames in the reference window (what the person does);
- ``reference_codes``: the reference's visual codes decoded to landmarks (what extraction and smoothing keep);
- ``output_codes``: the generated visual codes decoded to landmarks (what the model makes of the prompt);
- ``output``: MediaPipe on the rendered output frames (what a viewer sees).

Statistics of a landmark sequence (``style_stats``): blinks per minute, eye-opening variation (coefficient of
variation of lid gap / eye width), gaze movement (std of the iris centre within the eye, in eye widths),
mouth-opening std (inner-lip gap / mouth width), head motion (std of the nose tip in inter-ocular distances).
Reported per clip and seed as ratios output / reference, their medians over clips, and the diagonal test:
an output passes when its statistics are closer to its own reference's than to any other clip's.

    python -m omnitalker.eval.style --clips ../shared/media/faces/clips --json bench/results/style.json
    python -m omnitalker.eval.style --clips DIR --only d3 d10 --seeds 0
    python -m omnitalker.eval.style --photos ../shared/media/faces/photos --json bench/results/style_photos.json

With ``--photos`` (portraits: .jpg / .png), each photo is the reference image with the voice sample: a photo shows no
motion of its own to compare with, so its outputs' statistics are reported as they are (medians over photos and
seeds) - a person's, for scale, are the clips' reference statistics above (about 19 blinks a minute).

The clips are real people's videos: they are read, never written anywhere (no frames are saved).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from omnitalker.eval.reenact import mouth_gap
from omnitalker.frontend.face import FaceAnalyzer, decode_codes
from omnitalker.frontend.face.codes import eye_openness
from omnitalker.frontend.face.template import LEFT_EYE, LEFT_IRIS, RIGHT_EYE, RIGHT_IRIS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PIPELINE = ROOT / "weights" / "omnitalker-demo"
DEFAULT_VOICE = ROOT / "examples" / "voice.wav"
DEFAULT_VOICE_TEXT = "Good morning. This is my voice, recorded for the demo."
VOICE_REPEATS = 3  # the 3.3 s example voice said three times: a ~10 s reference window, blinks have room
DEFAULT_TEXT = ("Thank you all for coming today. I want to tell you a short story about a small town by the sea, "
                "where the mornings are quiet and the evenings are full of music and light.")
BLINK_DEPTH = 0.6  # a blink: eye openness below this share of the sequence's median
MIN_BLINK_GAP_SECONDS = 0.15  # dips closer than this are one blink
NOSE_TIP = 1
STATS = ("blinks_per_min", "eye_cv", "gaze_std", "mouth_std", "head_std")
POINTS = ("reference", "reference_codes", "output_codes", "output")
MIN_REFERENCE_BLINKS = 3  # the blink-rate ratio is read on clips whose reference blinks at least this often


def count_blinks(openness: np.ndarray, fps: float) -> int:
    """Dips of the eye openness below BLINK_DEPTH x its median (runs closer than MIN_BLINK_GAP_SECONDS merge)."""
    closed = openness < BLINK_DEPTH * np.median(openness)
    blinks, last_end = 0, -np.inf
    index = 0
    while index < len(closed):
        if closed[index]:
            start = index
            while index < len(closed) and closed[index]:
                index += 1
            if (start - last_end) / fps >= MIN_BLINK_GAP_SECONDS:
                blinks += 1
            last_end = index
        index += 1
    return blinks


def gaze_position(landmarks: np.ndarray) -> np.ndarray:
    """(T, 2) iris centre within the eye, both eyes averaged: along the corner line towards the person's left and
    across it (downwards), in eye widths. Both eyes on the same axes, so the mean is their shared movement (where they
    look), not their difference (vergence, tracking noise). (Measured from each eye's outer corner inwards, the two
    axes were mirror images and the mean cancelled the gaze: the statistic read only the difference.)"""
    values = []
    # each eye's two corners ordered from the person's right to their left: right eye outer -> inner, left inner -> outer
    for (start, end), iris in (((RIGHT_EYE[0], RIGHT_EYE[1]), RIGHT_IRIS), ((LEFT_EYE[1], LEFT_EYE[0]), LEFT_IRIS)):
        a, b = landmarks[:, start, :2], landmarks[:, end, :2]
        axis = b - a
        width = np.linalg.norm(axis, axis=-1, keepdims=True)
        along = axis / np.maximum(width, 1e-6)
        across = np.stack([-along[:, 1], along[:, 0]], -1)
        offset = landmarks[:, iris[0], :2] - (a + b) / 2
        values.append(np.stack([(offset * along).sum(-1), (offset * across).sum(-1)], -1) / np.maximum(width, 1e-6))
    return np.mean(values, axis=0)


def style_stats(landmarks: np.ndarray, fps: float) -> dict[str, float]:
    """The five style statistics of a (T, 478, 3) landmark sequence at ``fps``."""
    eyes = eye_openness(landmarks)
    inter_ocular = np.linalg.norm(landmarks[:, RIGHT_EYE[0], :2] - landmarks[:, LEFT_EYE[0], :2], axis=-1).mean()
    nose = landmarks[:, NOSE_TIP, :2] / max(float(inter_ocular), 1e-6)
    minutes = len(landmarks) / fps / 60
    return {
        "blinks_per_min": count_blinks(eyes, fps) / minutes,
        "eye_cv": float(eyes.std() / max(eyes.mean(), 1e-6)),
        "gaze_std": float(gaze_position(landmarks).std(0).mean()),
        "mouth_std": float(mouth_gap(landmarks).std()),
        "head_std": float(nose.std(0).mean()),
    }


def _voice_sample(voice: Path, repeats: int, folder: Path) -> Path:
    import soundfile

    wave, rate = soundfile.read(str(voice), dtype="float32")
    gap = np.zeros(int(0.3 * rate), np.float32)
    path = folder / "voice.wav"
    soundfile.write(str(path), np.concatenate([np.concatenate([wave, gap])] * repeats), rate)
    return path


def output_stats(pipe, analyzer: FaceAnalyzer, reference, text: str, seeds: list[int], steps: int) -> dict:
    """Per seed, the statistics of the output for `text` with a prepared reference: of its generated codes decoded to
    landmarks and of MediaPipe on its frames."""
    stats = {}
    for seed in seeds:
        out = pipe(text, reference=reference, num_inference_steps=steps, output_type="np",
                   generator=torch.Generator().manual_seed(seed))
        codes = np.asarray(out.visual_codes[0])
        rendered = analyzer.analyze_video(list(out.frames[0]), fps=out.fps)
        stats[str(seed)] = {
            "seconds": round(len(out.audio[0]) / out.sample_rate, 2),
            "output_codes": style_stats(decode_codes(codes, reference.identity), out.visual_codes_fps),
            "output": style_stats(rendered.landmarks, out.fps),
        }
    return stats


def evaluate_clip(pipe, analyzer: FaceAnalyzer, clip: Path, voice: Path, voice_text: str, text: str,
                  seeds: list[int], steps: int) -> dict:
    from omnitalker.io.video import read_video

    reference = pipe.prepare_reference(reference_video=str(clip), reference_audio=str(voice), reference_text=voice_text)
    window = read_video(str(clip), audio=False, max_seconds=reference.seconds)
    track = analyzer.analyze_video(list(window.frames), fps=window.fps)
    code_fps = reference.num_frames / reference.seconds
    result = {"clip": clip.stem, "reference_seconds": round(reference.seconds, 2),
              "reference": style_stats(track.landmarks, window.fps),
              "reference_codes": style_stats(decode_codes(reference.codes.numpy(), reference.identity), code_fps),
              "seeds": output_stats(pipe, analyzer, reference, text, seeds, steps)}
    return result


def evaluate_photo(pipe, analyzer: FaceAnalyzer, photo: Path, voice: Path, voice_text: str, text: str,
                   seeds: list[int], steps: int) -> dict:
    """The output statistics of a photo reference (with the voice sample), per seed."""
    reference = pipe.prepare_reference(reference_image=str(photo), reference_audio=str(voice),
                                       reference_text=voice_text)
    return {"photo": photo.stem, "seeds": output_stats(pipe, analyzer, reference, text, seeds, steps)}


def photo_medians(results: list[dict], point: str = "output") -> dict[str, float]:
    """Median of each statistic over photos and seeds."""
    return {stat: float(np.median([out[point][stat] for r in results for out in r["seeds"].values()]))
            for stat in STATS}


def ratios(results: list[dict], point: str = "output", against: str = "reference") -> dict[str, float]:
    """Median over clips (and seeds) of point / against for each statistic; blinks only where the reference
    blinks at least MIN_REFERENCE_BLINKS times in its window."""
    medians = {}
    for stat in STATS:
        values = []
        for r in results:
            base = r[against] if against in r else None
            for seed in r["seeds"].values():
                ref = base if base is not None else seed[against]
                mine = seed[point] if point in seed else r[point]
                if stat == "blinks_per_min":
                    if ref[stat] * r["reference_seconds"] / 60 < MIN_REFERENCE_BLINKS:
                        continue
                if ref[stat] > 0:
                    values.append(mine[stat] / ref[stat])
        medians[stat] = float(np.median(values)) if values else float("nan")
    return medians


def diagonal(results: list[dict], point: str = "output") -> dict[str, bool]:
    """Per output: closer (log statistics, each standardised over the references) to its own reference?"""
    def vector(stats):
        return np.log(np.array([stats["blinks_per_min"] + 1.0] + [stats[s] + 1e-4 for s in STATS[1:]]))

    refs = np.stack([vector(r["reference"]) for r in results])
    scale = refs.std(0) + 1e-6
    passed = {}
    for index, r in enumerate(results):
        for seed, out in r["seeds"].items():
            distance = np.linalg.norm((refs - vector(out[point])) / scale, axis=1)
            passed[f"{r['clip']}/{seed}"] = bool(np.argmin(distance) == index)
    return passed


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=Path, default=None, help="folder of real talking-head clips (*.mp4)")
    parser.add_argument("--photos", type=Path, default=None, help="folder of portraits (*.jpg, *.png)")
    parser.add_argument("--only", nargs="*", default=None, help="clip or photo names (stems), default all")
    parser.add_argument("--pipeline", default=str(DEFAULT_PIPELINE))
    parser.add_argument("--voice", type=Path, default=DEFAULT_VOICE, help="voice sample (with --voice-text)")
    parser.add_argument("--voice-text", default=DEFAULT_VOICE_TEXT)
    parser.add_argument("--voice-repeats", type=int, default=VOICE_REPEATS,
                        help="say the voice sample this many times: the reference window's length")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--expression", choices=("on", "off"), default=None,
                        help="override the pipeline's match_reference_expression config "
                        "(omnitalker/pipeline/expression_style.py)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.clips is None and args.photos is None:
        parser.error("give --clips (real talking-head clips, e.g. ../shared/media/faces/clips) or --photos")
    paths, photos = [], []
    for folder, patterns, what in ((args.clips, ("*.mp4",), "clips"), (args.photos, ("*.jpg", "*.png"), "photos")):
        if folder is None:
            continue
        if not folder.is_dir():
            parser.error(f"--{what} {folder} is not a folder (the real ones live in ../shared/media/faces/{what})")
        found = sorted(p for pattern in patterns for p in folder.glob(pattern)
                       if not args.only or p.stem in set(args.only))
        if not found:
            parser.error(f"no matching {what} in {folder}")
        (paths if what == "clips" else photos).extend(found)

    import tempfile

    from omnitalker.pipeline import OmniTalkerPipeline

    pipe = OmniTalkerPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    if args.expression is not None:
        pipe.register_to_config(match_reference_expression=args.expression == "on")
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, FaceAnalyzer() as analyzer:
        voice = _voice_sample(args.voice, args.voice_repeats, Path(folder))
        voice_text = " ".join([args.voice_text] * args.voice_repeats)
        for path in paths:
            result = evaluate_clip(pipe, analyzer, path, voice, voice_text, args.text, args.seeds, args.steps)
            results.append(result)
            line = " ".join(f"{s}={result['reference'][s]:.3g}" for s in STATS)
            print(f"{path.stem} reference: {line}", flush=True)
            for seed, out in result["seeds"].items():
                for point in ("output_codes", "output"):
                    line = " ".join(f"{s}={out[point][s]:.3g}" for s in STATS)
                    print(f"{path.stem} seed {seed} {point}: {line}", flush=True)
        photo_results = []
        for path in photos:
            result = evaluate_photo(pipe, analyzer, path, voice, voice_text, args.text, args.seeds, args.steps)
            photo_results.append(result)
            for seed, out in result["seeds"].items():
                line = " ".join(f"{s}={out['output'][s]:.3g}" for s in STATS)
                print(f"{path.stem} (photo) seed {seed} output: {line}", flush=True)
    summary = {}
    if results:
        summary.update({
            "output_over_reference": ratios(results, "output"),
            "output_codes_over_reference_codes": ratios(results, "output_codes", "reference_codes"),
            "reference_codes_over_reference": ratios([dict(r, seeds={"-": {"reference_codes": r["reference_codes"]}})
                                                      for r in results], "reference_codes"),
            "reference_medians": {stat: float(np.median([r["reference"][stat] for r in results])) for stat in STATS},
            "diagonal": diagonal(results),
        })
        summary["diagonal_passed"] = f"{sum(summary['diagonal'].values())}/{len(summary['diagonal'])}"
    if photo_results:
        summary["photo_output_medians"] = photo_medians(photo_results)
        summary["photo_output_codes_medians"] = photo_medians(photo_results, "output_codes")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps({k: v for k, v in summary.items() if k != "diagonal"}, indent=1))
    report = {"pipeline": args.pipeline, "match_reference_expression": bool(pipe.config.get("match_reference_expression")),
              "text": args.text, "seeds": args.seeds, "steps": args.steps,
              "voice": str(args.voice), "voice_repeats": args.voice_repeats,
              "machine": platform.processor() or platform.machine(), "clips": results, "photos": photo_results,
              "summary": summary}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return report


if __name__ == "__main__":
    main()
