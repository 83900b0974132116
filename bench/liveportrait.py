"""LivePortraitRenderer speed at full size (the released configuration, random weights: speed does not depend on
the values), against WarpRenderer on the same codes in the same run.

The driven sequence: the astronaut photo's codes with a head sweep, jaw opening, blinks and gaze shifts
(omnitalker.eval.closed_loop.motion_sequence). Both renderers go through the pipeline's contract
(``prepare_source`` once, ``render_codes``), at the same output size. For LivePortrait, one batch is also timed
stage by stage (driving frames drawn by the warp renderer, motion extractor, warping module, SPADE generator,
paste-back).

    python bench/liveportrait.py                  # 8 frames on CPU, 2 threads; writes bench/results/liveportrait.json
    python bench/liveportrait.py --device cuda --frames 100 --batch-size 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch

from omnitalker.eval.closed_loop import motion_sequence
from omnitalker.frontend.face import FaceAnalyzer, FaceIdentity, encode_codes
from omnitalker.models.liveportrait import camera
from omnitalker.render.liveportrait import LivePortraitRenderer, open_ratios
from omnitalker.render.warp import WarpRenderer

RESULTS = Path(__file__).parent / "results" / "liveportrait.json"


def timed(step, repeats: int = 1) -> float:
    """Best wall time of `repeats` calls (seconds), after synchronising a GPU."""
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def stage_times(renderer: LivePortraitRenderer, source, codes: np.ndarray) -> dict[str, float]:
    """Seconds per frame of each stage, for one batch of `codes`."""
    from omnitalker.frontend.face.codes import decode_codes

    n = len(codes)
    landmarks = decode_codes(codes, source.identity) * np.array([*source.scale, source.scale[0]], np.float32)
    result = {}
    start = time.perf_counter()
    drawn = renderer._warp.render(source.warp_state, landmarks * np.float32(source.warp_scale))
    crops = renderer._driving_crops(drawn, source.to_crop, source.warp_scale)
    result["driving frames (warp renderer + crop)"] = (time.perf_counter() - start) / n
    result["motion extractor"] = timed(lambda: renderer.motion_extractor(crops)) / n
    x_s = source.keypoints.expand(n, -1, -1)
    motion = camera.refine_motion(renderer.motion_extractor(crops))
    src = {k: v.expand(n, *v.shape[1:]) for k, v in source.motion.items()}
    anchor = {k: v.expand(n, *v.shape[1:]) for k, v in source.anchor.items()}
    eyes, lips = open_ratios(landmarks)
    eye_ratios = torch.tensor(np.stack([np.full(n, source.eye_ratios[0]), np.full(n, source.eye_ratios[1]),
                                        eyes.mean(-1)], 1), dtype=x_s.dtype, device=x_s.device)
    lip_ratios = torch.tensor(np.stack([np.full(n, source.lip_ratio), lips], 1), dtype=x_s.dtype, device=x_s.device)

    def glue():
        moved = camera.relative_motion(src, motion, anchor)
        moved = moved + camera.retarget(renderer.eye, x_s, eye_ratios) + camera.retarget(renderer.lip, x_s, lip_ratios)
        return camera.stitch(renderer.stitching_network, x_s, moved)

    result["keypoints, retargeting, stitching"] = timed(glue) / n
    x_d = glue()
    feature = source.feature.expand(n, *source.feature.shape[1:])
    warped = {}
    result["warping module"] = timed(lambda: warped.update(renderer.warping_module(feature, x_d, x_s))) / n
    out = {}
    result["SPADE generator"] = timed(lambda: out.update(image=renderer.spade_generator(warped["out"]))) / n
    result["paste-back"] = timed(lambda: renderer.paste(source, out["image"])) / n
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per timed pass")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch and cv2 threads (the target machine has 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-side", type=int, default=512, help="output frame size (the photo is 512x512)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    from skimage import data

    image = data.astronaut()
    track = FaceAnalyzer().analyze_image(image)
    identity = FaceIdentity.from_track(track)
    reference = SimpleNamespace(image=image, landmarks=track.landmarks[0], identity=identity)
    codes = motion_sequence(encode_codes(track.landmarks, identity)[0], identity, max(args.frames, 2))[: args.frames]

    warp = WarpRenderer(output_size=512)
    warp_source = warp.prepare_source(reference, args.max_side)
    warp.render_codes(warp_source, codes[:1])  # warm-up
    warp_fps = args.frames / timed(lambda: warp.render_codes(warp_source, codes), repeats=2)

    torch.manual_seed(0)
    renderer = LivePortraitRenderer(batch_size=args.batch_size).eval().to(args.device)  # released sizes
    parameters = sum(p.numel() for p in renderer.parameters())
    prepare_s = timed(lambda: renderer.prepare_source(reference, args.max_side))
    source = renderer.prepare_source(reference, args.max_side)
    renderer.render_codes(source, codes[:1])  # warm-up
    seconds = timed(lambda: renderer.render_codes(source, codes))
    liveportrait_fps = args.frames / seconds
    stages = stage_times(renderer, source, codes[: args.batch_size])

    device = args.device
    if device.startswith("cuda"):
        device = f"{device} ({torch.cuda.get_device_name()})"
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch/cv2 threads "
                   f"{args.threads}",
        "device": device, "torch": torch.__version__, "frames": args.frames, "batch_size": args.batch_size,
        "output": list(source.size), "parameters": parameters, "weights": "random (released shapes)",
        "liveportrait_fps": liveportrait_fps, "liveportrait_seconds_per_frame": 1 / liveportrait_fps,
        "liveportrait_prepare_source_s": prepare_s, "warp_renderer_fps": warp_fps,
        "warp_over_liveportrait": warp_fps / liveportrait_fps, "stage_seconds_per_frame": stages,
    }
    print(f"LivePortraitRenderer (released sizes, {parameters / 1e6:.1f} M parameters, random weights) vs "
          f"WarpRenderer, {args.frames} frames of the astronaut photo at {source.size[0]}x{source.size[1]}; "
          f"{results['machine']}; device {device}")
    print(f"  LivePortraitRenderer {liveportrait_fps:8.3f} frames/s ({1 / liveportrait_fps:.2f} s a frame, batch "
          f"{args.batch_size}; prepare_source {prepare_s:.2f} s)")
    print(f"  WarpRenderer         {warp_fps:8.1f} frames/s ({warp_fps / liveportrait_fps:.0f}x faster)")
    print("  LivePortrait stages, seconds a frame:")
    for name, value in stages.items():
        print(f"    {name:<40} {value:8.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
