"""Assemble the bundled demo pipeline (weights/omnitalker-demo) from a trained transformer.

    python scripts/make_demo_weights.py --transformer outputs/demo_cpu/transformer \
        --duration-predictor outputs/duration_cpu/duration_predictor --out weights/omnitalker-demo \
        --train-log outputs/demo_cpu/logs/train.csv --card-notes "trained 2 h on 2 CPU cores"

The pipeline composes the trained transformer (EMA weights) and, for the "durations" text layout, the
trained duration predictor and the phoneme tokenizer, with the parameter-free parts: the
flow-matching scheduler (16 Euler steps, sway -1), the character/pinyin tokenizer for other layouts, the
Griffin-Lim vocoder (no trained Vocos weights can be bundled offline; `omnitalker.convert.vocos` makes a
Vocos folder from `charactr/vocos-mel-24khz` for users who have it) and the training-free warp
renderer. The folder is written by `save_pretrained` (safetensors) next to a model card.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

from omnitalker.eval.benchmark import markdown_table
from omnitalker.flow.scheduler import OmniTalkerFlowMatchScheduler
from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.frontend.text import OmniTalkerTokenizer
from omnitalker.models.duration_predictor import DurationPredictor
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.models.vocoder import GriffinLimVocoder
from omnitalker.pipeline import OmniTalkerPipeline
from omnitalker.pipeline.mel_smoothing import DEMO_MEL_SMOOTHING
from omnitalker.render.warp import WarpRenderer

RENDER_SIZE = 256  # face crop size: real time on a laptop CPU (bench/renderer.py)
LICENCE_SECTION = """Apache-2.0 (ours): trained here from scratch on the synthetic espeak-ng corpus; no third-party weights
inside (the vocoder is parameter-free Griffin-Lim). Weights you may combine it with carry their own licences:
the released F5-TTS weights are **CC-BY-NC-4.0** (non-commercial) — so is a pipeline converted from them
(`python -m omnitalker.convert.pipeline`), which uses this checkpoint as the default visual branch of its
cascade — and the Vocos vocoder `charactr/vocos-mel-24khz` is MIT."""
MAX_FOLDER_MB = 100  # issue 5: the bundled checkpoint stays under 100 MB


def _last_rows(path: Path | None, n: int = 1) -> list[dict]:
    if path is None or not path.exists():
        return []
    with open(path) as handle:
        return list(csv.DictReader(handle))[-n:]


def evaluation_section(eval_json: Path | None) -> str:
    """The table of ``python -m omnitalker.eval --out eval_json`` (run on this folder), or a pointer to it."""
    if eval_json is None:
        return "Not evaluated yet: `python -m omnitalker.eval --pipeline weights/omnitalker-demo --split val`."
    result = json.loads(eval_json.read_text())
    config = result["config"]
    return (f"`python -m omnitalker.eval --pipeline weights/omnitalker-demo --split {'val' if len(config['splits']) > 1 else config['splits'][0]} "
            f"--max-samples {config['max_samples']} --steps {config['steps']} --seed {config['seed']}` "
            "(held-out splits of the training corpus; lags in frames at 30 fps; `ground_truth` and `cascade` "
            "are the references every metric is read against):\n\n" + markdown_table(result))


def model_card(transformer: OmniTalkerTransformer, train_rows: list[dict], val_rows: list[dict], notes: str,
               evaluation: str) -> str:
    params = sum(p.numel() for p in transformer.parameters())
    config = {k: v for k, v in transformer.config.items() if not k.startswith("_")}
    last = train_rows[-1] if train_rows else {}
    val = val_rows[-1] if val_rows else {}
    return f"""---
library_name: diffusers
pipeline_tag: text-to-video
license: apache-2.0
tags: [omnitalker, talking-head, text-to-speech, flow-matching]
---

# omnitalker-demo

A small OmniTalker pipeline bundled with the repository so the showcase, CLI and notebooks run offline.
Load it with `OmniTalkerPipeline.from_pretrained("weights/omnitalker-demo")`.

## What is inside
- `transformer/`: `OmniTalkerTransformer`, {params:,} parameters (EMA weights).
- `scheduler/`: flow-matching ODE solver (Euler, 16 steps, sway sampling -1).
- `tokenizer/`: default character / tone-numbered-pinyin vocabulary ({config['text_num_embeds']} tokens).
- `vocoder/`: parameter-free Griffin-Lim (no trained Vocos weights can be bundled offline).
- `renderer/`: training-free warp renderer ({RENDER_SIZE}² face crop).

Transformer config: `{json.dumps(config)}`

## Training
Data: the synthetic talking corpus (`python -m omnitalker.data.synthetic`): espeak-ng speech in 24
speaker styles (English), visual codes driven by the same phoneme timeline. Recipe: `configs/train/demo_cpu.yaml`.
{notes}

Last logged training step: {json.dumps(last)}

Last validation (unseen sentences, training speakers): {json.dumps(val)}

## Evaluation
{evaluation}

## Licence
{LICENCE_SECTION}

## Limits — read before judging the output
- Trained for a short time: judge intelligibility, lip-sync and style by the Evaluation table (compare each
  row with the ground-truth rows: the same audio through the same vocoder), not by this text. A GPU run of
  `configs/train/demo.yaml` is the way to the paper's quality.
- Synthetic espeak-ng voices only: real human references are out of distribution.
- Every output carries a visible "AI-generated" label and invisible audio and frame watermarks.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transformer", required=True, help="diffusers folder of the trained transformer")
    parser.add_argument("--duration-predictor", help="DurationPredictor folder (required by the durations layout)")
    parser.add_argument("--card", type=Path, help="write this model card (markdown) instead of the generated one")
    parser.add_argument("--out", default="weights/omnitalker-demo")
    parser.add_argument("--train-log", type=Path, help="logs/train.csv of the run (for the model card)")
    parser.add_argument("--val-log", type=Path, help="logs/val.csv of the run (for the model card)")
    parser.add_argument("--card-notes", default="", help="extra lines for the model card (hardware, steps, time)")
    parser.add_argument("--eval-json", type=Path, help="--out file of python -m omnitalker.eval run on these weights")
    args = parser.parse_args()

    transformer = OmniTalkerTransformer.from_pretrained(args.transformer).eval()
    durations = transformer.text_layout == "durations"
    if durations and not args.duration_predictor:
        raise SystemExit("this transformer lays phonemes out by duration: pass --duration-predictor FOLDER")
    pipe = OmniTalkerPipeline(
        transformer=transformer,
        scheduler=OmniTalkerFlowMatchScheduler(),
        tokenizer=PhonemeTokenizer.default() if durations else OmniTalkerTokenizer.default(),
        vocoder=GriffinLimVocoder().eval(),
        renderer=WarpRenderer(output_size=RENDER_SIZE),
        duration_predictor=DurationPredictor.from_pretrained(args.duration_predictor).eval() if durations else None,
        asr="default",
        mel_smoothing=list(DEMO_MEL_SMOOTHING),  # the small model's frame jitter (omnitalker/pipeline/mel_smoothing.py)
    )
    out = Path(args.out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp)
    card = args.card.read_text() if args.card else model_card(
        transformer, _last_rows(args.train_log), _last_rows(args.val_log), args.card_notes,
        evaluation_section(args.eval_json))
    (tmp / "README.md").write_text(card)
    size_mb = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file()) / 1e6
    if size_mb > MAX_FOLDER_MB:
        raise SystemExit(f"the demo folder is {size_mb:.1f} MB, over the {MAX_FOLDER_MB} MB budget")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    OmniTalkerPipeline.from_pretrained(out)  # it must load back
    print(f"wrote {out} ({size_mb:.1f} MB)")


if __name__ == "__main__":
    main()
