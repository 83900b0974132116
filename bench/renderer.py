"""Renderer speed: frames/s of WarpRenderer at 256^2 and 512^2 on this machine, against two baselines
measured in the same run on the same driven landmarks:

- `remap only`: one cv2.remap of the crop with an identity map + the paste back (the floor any
  dense-warp renderer pays per frame);
- `naive per-triangle`: the textbook piecewise-affine face warp (cv2.warpAffine of each triangle's
  bounding box, masked and composited; same triangles as WarpRenderer), without mouth/eye textures.

The driven sequence: the astronaut photo's codes with a head sweep (yaw/pitch/roll), jaw opening,
blinks and gaze shifts (omnitalker.eval.closed_loop.motion_sequence), decoded to 478 landmarks.

    python bench/renderer.py                 # 100 frames, prints a table, writes bench/results/renderer.json
    python bench/renderer.py --frames 30 --threads 2
    python bench/renderer.py --zoom 2 --out bench/results/renderer_zoom2.json   # the crop drawn at 256² and 510²
    python bench/renderer.py --image portrait.jpg --sizes 256 512 1024 --out bench/results/renderer_photo.json

With --image, a photo of your own is driven instead, first scaled as the pipeline scales references (longer side at
most --max-side): a face that fills a large frame shows what the crop size costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from omnitalker.eval.closed_loop import motion_sequence
from omnitalker.frontend.face import FaceAnalyzer, FaceIdentity, decode_codes, encode_codes
from omnitalker.io.image import fit_within
from omnitalker.pipeline.limits import DEFAULT_MAX_SIDE
from omnitalker.render.warp import NUM_LANDMARKS, RenderReference, WarpRenderer, _paste

RESULTS = Path(__file__).parent / "results" / "renderer.json"
SIZES = (256, 512)
TARGET_FPS = {256: 25.0, 512: 10.0}  # issue 3 targets on 2 CPU cores


def naive_crop(ref: RenderReference, renderer: WarpRenderer, points: np.ndarray) -> np.ndarray:
    """Per-triangle forward warp into the crop (the common OpenCV recipe), same triangulation."""
    size = renderer.config.output_size
    to_crop = size / ref.crop_size
    source = (ref.source_vertices - ref.crop_origin + 0.5) * to_crop - 0.5  # reference in crop px
    driven = renderer.driven_vertices(ref, points).astype(np.float32)
    reference_crop = cv2.warpAffine(ref.image, np.array([[1 / to_crop, 0, ref.crop_origin[0]],
                                                         [0, 1 / to_crop, ref.crop_origin[1]]], np.float32),
                                    (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                    borderMode=cv2.BORDER_REPLICATE)
    out = reference_crop.copy()
    depth = points[ref.triangles[ref.num_outer:], 2].mean(1)
    order = np.concatenate([np.arange(ref.num_outer), ref.num_outer + np.argsort(-depth)])
    for f in order:
        dst = driven[ref.triangles[f]]
        x, y, w, h = cv2.boundingRect(dst)
        x, y = max(x, 0), max(y, 0)
        w, h = min(w, size - x), min(h, size - y)
        if w <= 0 or h <= 0:
            continue
        local = (dst - np.array([x, y], np.float32)).astype(np.float32)
        matrix = cv2.getAffineTransform(source[ref.triangles[f]].astype(np.float32), local)
        patch = cv2.warpAffine(reference_crop, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(mask, np.round(local).astype(np.int32), 1)
        np.copyto(out[y: y + h, x: x + w], patch, where=mask[..., None].astype(bool))
    return out


def frames_per_second(step, sequence: np.ndarray, repeats: int) -> float:
    step(sequence[0])  # warm-up (caches, lazy imports)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for points in sequence:
            step(points)
        best = min(best, time.perf_counter() - start)
    return len(sequence) / best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many passes")
    parser.add_argument("--threads", type=int, default=2, help="cv2.setNumThreads (the target machine has 2 cores)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--image", type=Path, help="a photo to drive instead of the astronaut")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="the photo's longer side at most (px)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="output sizes (crop sides) to time")
    parser.add_argument("--zoom", type=float, default=1.0,
                        help="enlarge the image this many times first (the astronaut's face crop is 255 px: --zoom 2 "
                             "makes it 510, so a 512 output draws at nearly 512²)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)

    if args.image is None:
        from skimage import data

        image = data.astronaut()
    else:
        image = np.asarray(Image.open(args.image).convert("RGB"))
        width, height = fit_within(image.shape[1], image.shape[0], args.max_side)
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    if args.zoom != 1.0:
        image = cv2.resize(image, None, fx=args.zoom, fy=args.zoom, interpolation=cv2.INTER_CUBIC)
    track = FaceAnalyzer().analyze_image(image)
    identity = FaceIdentity.from_track(track)
    codes = motion_sequence(encode_codes(track.landmarks, identity)[0], identity, args.frames)
    sequence = decode_codes(codes, identity)
    assert sequence.shape[1] == NUM_LANDMARKS

    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"cv2 threads {args.threads}", "frames": args.frames, "image": list(image.shape),
               "source": "astronaut" if args.image is None else args.image.name, "zoom": args.zoom, "sizes": {}}
    print(f"WarpRenderer, {args.frames} driven frames of the {image.shape[1]}x{image.shape[0]} "
          f"{'astronaut photo' if args.image is None else args.image.name}, "
          f"best of {args.repeats}; {results['machine']}")
    print(f"{'size':>6} {'renderer fps':>13} {'target':>7} {'remap-only fps':>15} {'naive fps':>10} "
          f"{'vs naive':>9} {'share of remap-only':>20}")
    for size in args.sizes:
        renderer = WarpRenderer(output_size=size)
        reference = renderer.prepare(image, track.landmarks[0])
        drawn = reference.render_size  # the crop is never drawn larger than it is in the frame
        identity_x, identity_y = np.meshgrid(np.arange(drawn, dtype=np.float32), np.arange(drawn, dtype=np.float32))
        to_frame = reference.crop_size / drawn
        map_x = (identity_x + 0.5) * to_frame - 0.5 + reference.crop_origin[0]
        map_y = (identity_y + 0.5) * to_frame - 0.5 + reference.crop_origin[1]

        def remap_only(points, reference=reference, map_x=map_x.astype(np.float32), map_y=map_y.astype(np.float32)):
            crop = cv2.remap(reference.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            return _paste(reference, crop)

        ours = frames_per_second(lambda p, r=renderer, ref=reference: r.render_frame(ref, p), sequence, args.repeats)
        floor = frames_per_second(remap_only, sequence, args.repeats)
        naive = frames_per_second(lambda p, r=renderer, ref=reference: _paste(ref, naive_crop(ref, r, p)),
                                  sequence[: max(args.frames // 4, 2)], 1)
        results["sizes"][str(size)] = {"drawn_size": drawn, "renderer_fps": ours, "remap_only_fps": floor,
                                       "naive_triangle_fps": naive,
                                       "target_fps": TARGET_FPS.get(size), "speedup_vs_naive": ours / naive,
                                       "fraction_of_remap_only": ours / floor}
        print(f"{size:>5}² ({drawn}²) {ours:>13.1f} {TARGET_FPS.get(size, float('nan')):>7.0f} {floor:>15.1f} {naive:>10.1f} {ours / naive:>8.1f}x "
              f"{ours / floor:>19.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
