"""Do the synthetic corpus's speakers move like real people? Style statistics of drawn speakers against real clips.

    python bench/corpus_style.py --real bench/results/style.json --out bench/results/corpus_style.json
    python bench/corpus_style.py --ranges demo people --speakers 64

For each named set of style ranges (``omnitalker.data.motion.STYLE_RANGES``), ``--speakers`` speakers are drawn
(``random_speaker``) and each says the style benchmark's ~9 s text (espeak-ng timeline, ``synthesize_codes``); their
codes are decoded on the face template and measured with the style benchmark's statistics (``style_stats``: blinks
per minute, eye-opening variation, gaze movement, mouth-opening std, head motion). The real people are the nine
shared clips' reference codes as ``python -m omnitalker.eval.style`` stored them (``--real``, the same statistics of
the same kind of codes). Printed per statistic: the drawn speakers' 5th / 50th / 95th percentiles, the real clips'
minimum / median / maximum, and coverage: how many real clips lie inside the drawn speakers' 5-95 % range.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FRAME_SIZE = 512  # px of the frame the template is decoded into (the statistics are scale-free)
FACE_SCALE = 200.0  # px per face-size unit


def template_identity():
    """The face template as a subject, centred in a FRAME_SIZE frame."""
    from omnitalker.frontend.face.codes import FaceIdentity
    from omnitalker.frontend.face.template import load_face_template

    centre = np.array([FRAME_SIZE / 2, FRAME_SIZE / 2, 0.0], np.float32)
    return FaceIdentity(neutral=load_face_template().vertices.astype(np.float32), center=centre, scale=FACE_SCALE,
                        frame_size=(FRAME_SIZE, FRAME_SIZE))


def drawn_stats(ranges: str, speakers: int, seed: int, text: str) -> list[dict[str, float]]:
    """The style statistics of `speakers` speakers drawn with the `ranges` style ranges, each saying `text`."""
    from omnitalker.data.motion import random_speaker, synthesize_codes
    from omnitalker.data.synthetic import speech_request
    from omnitalker.eval.style import style_stats
    from omnitalker.frontend.espeak import synthesize_many
    from omnitalker.frontend.face.codes import CODE_FPS, decode_codes

    rng = np.random.default_rng(seed)
    styles = [random_speaker(rng, f"spk{i:03d}", "en", ranges=ranges) for i in range(speakers)]
    spoken = synthesize_many([speech_request(text, "en", style) for style in styles], workers=2)
    identity = template_identity()
    stats = []
    for style, utt in zip(styles, spoken, strict=True):
        duration = len(utt.audio) / utt.sample_rate
        codes = synthesize_codes(utt.phonemes, duration, style, rng, fps=CODE_FPS)
        stats.append(style_stats(decode_codes(codes, identity), CODE_FPS))
    return stats


def coverage(drawn: list[dict], real: list[dict]) -> dict:
    """Per statistic: the drawn 5/50/95 % points, the real min / median / max, and the real clips inside 5-95 %."""
    from omnitalker.eval.style import STATS

    table = {}
    for name in STATS:
        ours, theirs = np.array([s[name] for s in drawn]), np.array([s[name] for s in real])
        low, mid, high = np.percentile(ours, [5, 50, 95])
        table[name] = {"drawn_p5_p50_p95": [round(float(v), 4) for v in (low, mid, high)],
                       "real_min_median_max": [round(float(v), 4) for v in (theirs.min(), np.median(theirs),
                                                                               theirs.max())],
                       "real_inside": int(((theirs >= low) & (theirs <= high)).sum()), "real_count": len(theirs)}
    return table


def main(argv: list[str] | None = None) -> dict:
    from omnitalker.data.motion import STYLE_RANGES
    from omnitalker.eval.style import DEFAULT_TEXT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranges", nargs="+", default=list(STYLE_RANGES), choices=list(STYLE_RANGES))
    parser.add_argument("--speakers", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=ROOT / "bench" / "results" / "style.json",
                        help="a style benchmark result (python -m omnitalker.eval.style --json): its clips' codes")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.speakers < 2:
        parser.error("--speakers must be at least 2")
    if not args.real.is_file():
        parser.error(f"--real {args.real} not found: run `python -m omnitalker.eval.style --clips DIR --json F`")
    real = [clip["reference_codes"] for clip in json.loads(args.real.read_text())["clips"]]
    result = {"speakers": args.speakers, "seed": args.seed, "text": DEFAULT_TEXT, "real": str(args.real),
              "real_clips": len(real), "machine": platform.machine(), "ranges": {}}
    for ranges in args.ranges:
        table = coverage(drawn_stats(ranges, args.speakers, args.seed, DEFAULT_TEXT), real)
        result["ranges"][ranges] = table
        print(f"\n{ranges}: drawn p5 / p50 / p95 | real min / median / max | real clips inside")
        for name, row in table.items():
            print(f"  {name:15s} {' / '.join(f'{v:.3f}' for v in row['drawn_p5_p50_p95'])} | "
                  f"{' / '.join(f'{v:.3f}' for v in row['real_min_median_max'])} | "
                  f"{row['real_inside']}/{row['real_count']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
