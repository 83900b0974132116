"""Does the model take a voice's head-motion amplitude from its reference? Per speaker, the head-sway size of the
ground truth against that of the model with and without the reference, on the evaluation's items and prompts.

    PYTHONPATH=. python scripts/pose_style_probe.py --pipeline weights/omnitalker-demo \
        --data-dir data/synth-eval-voices --split val_speakers --max-samples 98

P-FID (``omnitalker.eval.fid``) folds every pose statistic into one distance per speaker and is noisy at a few
clips per speaker. The synthetic speakers differ in head motion mainly by amplitude (``data/motion.py``:
``head_amplitude`` scales yaw, pitch and roll; ``translation_amplitude`` tx and ty), so this prints, per speaker,
the standard deviation of each pose code over the speaker's generated frames and over the ground-truth pool the
FIDs use, and across speakers the correlation between the ground truth's yaw spread and each system's. A model
that imitates the reference's motion follows the ground truth (correlation near 1); one that ignores it moves
every head alike (correlation near 0). The prompt column is the within-clip yaw spread of the ~1-3 s prompt
itself (its kept part is what the model sees): how much of the speaker's amplitude a prompt can show.
``--guidance "visual=1"`` adds visual-prompt guidance (one more transformer pass per step) to the reference system.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from omnitalker.eval.benchmark import plan_items, run_model
from omnitalker.eval.fid import POSE_COLUMNS, p_fid
from omnitalker.flow.guidance import GuidanceConfig
from omnitalker.frontend.face.codes import POSE_NAMES

SHOWN = 5  # yaw, pitch, roll, tx, ty (log_scale is constant in the synthetic corpora)
YAW = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--split", default="val_speakers")
    parser.add_argument("--max-samples", type=int, default=98)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--guidance", default="", help="CFG of the model, e.g. 'visual=1' (omnitalker/flow/guidance.py)")
    args = parser.parse_args()
    guidance = GuidanceConfig.parse(args.guidance) if args.guidance else None

    from omnitalker.pipeline import OmniTalkerPipeline

    pipe = OmniTalkerPipeline.from_pretrained(args.pipeline)
    items, pools = plan_items(args.data_dir, [args.split], args.max_samples)
    codes = {"ground_truth": [item.clip.codes for item in items]}
    for system, with_reference in (("reference", True), ("no_reference", False)):
        codes[system] = [output.codes for output in run_model(pipe, items, with_reference, args.steps, args.seed,
                                                              guidance=guidance)]
    by_speaker = defaultdict(list)
    for index, item in enumerate(items):
        by_speaker[item.clip.speaker].append(index)

    def spread(arrays) -> np.ndarray:  # std of each shown pose code over all frames of the arrays
        return np.concatenate(arrays)[:, POSE_COLUMNS].std(0)[:SHOWN]

    print(f"pose std ({', '.join(POSE_NAMES[:SHOWN])}) per speaker; P-FID against the ground-truth pool")
    yaw = defaultdict(list)
    fids = defaultdict(list)
    for speaker, rows in by_speaker.items():
        line = [f"{speaker} ({len(rows)} clips)", f"pool {np.round(spread(pools[speaker]), 3)}"]
        for system, system_codes in codes.items():
            chosen = [system_codes[i] for i in rows]
            line.append(f"{system} {np.round(spread(chosen), 3)}")
            yaw[system].append(spread(chosen)[YAW])
            fids[system].append(p_fid(pools[speaker], chosen))
        prompt_yaw = np.mean([items[i].prompt.codes[:, POSE_COLUMNS][:, YAW].std() for i in rows])
        line.append(f"prompt yaw (within clip) {prompt_yaw:.3f}")
        print(" | ".join(line))
    for system in ("reference", "no_reference"):
        correlation = np.corrcoef(yaw["ground_truth"], yaw[system])[0, 1]
        print(f"{system}: yaw spread vs ground truth's across {len(by_speaker)} speakers: correlation "
              f"{correlation:.2f}; P-FID {np.mean(fids[system]):.3g}")


if __name__ == "__main__":
    main()
