"""CLI of the evaluation (protocol and metrics: ``omnitalker.eval.benchmark``).

    OMP_NUM_THREADS=1 python -m omnitalker.eval --pipeline weights/omnitalker-demo --split val \
        --data-dir data/synth-en --out results.json

Prints the recognizer's CER on the held-out ground truth first (what a CER can mean here), then a
markdown table per split and system; the JSON holds the configuration, the table and per-item values.
English items get a CER from ``--recognizer`` (letters), Mandarin items from ``--recognizer-zh`` (a
``train_recognizer --lang zh`` model; CER over the toned pinyin transcript, column "CER zh"); without
that folder Mandarin CER stays empty and a note says so.
The WER column is Whisper's (the bundled offline tiny.en, ``--asr`` for another; Whisper's English
normalisation) on the vocoded audio of every system; ``--no-wer`` skips it.
The default run (24 items, 16 steps) of weights/omnitalker-demo took 5 min wall on one thread of the
shared 2-core CPU (torch 2.13), 3 of them sampling the reference system (4 guidance passes per step).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from omnitalker.frontend.asr import DEFAULT_ASR
from omnitalker.pipeline.mel_smoothing import parse_mel_smoothing
from omnitalker.pipeline.text_layout import (
    DEFAULT_PROMPT_KEEP,
    MAX_PROMPT_SHARE,
    PROMPT_KEEPS,
    check_prompt_share,
)

from .benchmark import EVAL_SPLITS, PROMPT_LAYOUTS, SYSTEMS, TARGET_LAYOUTS, evaluate, markdown_table

DEFAULT_DATA_DIR = "data/synth-en"
DEFAULT_RECOGNIZER = "weights/ctc-recognizer"
DEFAULT_RECOGNIZER_ZH = "weights/ctc-recognizer-zh"
DEFAULT_MAX_SAMPLES = 24
DEFAULT_SEED = 0
GENERATE_COMMAND = "python -m omnitalker.data.synthetic --out {dir} --hours 0.6 --speakers 24 --langs en --seed 0"
TRAIN_RECOGNIZER_COMMAND = "python -m omnitalker.eval.train_recognizer --data-dir {data} --out {out}"


def _print_judge_cer(name: str, recognizer_dir: Path) -> None:
    """The recognizer's CER on its held-out ground truth, from its training_results.json (when saved)."""
    training = recognizer_dir / "training_results.json"
    if training.is_file():
        info = json.loads(training.read_text())
        print(f"{name} CER on held-out ground truth (all clips): "
              + ", ".join(f"{key[4:]} {value:.3f}" for key, value in info.items() if key.startswith("cer_")))


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Evaluate a pipeline on the synthetic corpus (omnitalker.eval.benchmark).")
    parser.add_argument("--pipeline", required=True, help="pipeline folder (save_pretrained layout)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="corpus folder with index.json")
    parser.add_argument("--split", default="val", choices=("val", *EVAL_SPLITS), help='"val" = both held-out splits')
    parser.add_argument("--recognizer", default=DEFAULT_RECOGNIZER, help="CTC recognizer folder (English CER)")
    parser.add_argument("--recognizer-zh", default=DEFAULT_RECOGNIZER_ZH,
                        help="Mandarin CTC recognizer folder (train_recognizer --lang zh; CER over toned pinyin); "
                             "missing = no Mandarin CER")
    parser.add_argument("--max-samples", type=int, default=DEFAULT_MAX_SAMPLES, help="items in all, shared by the splits")
    parser.add_argument("--steps", type=int, default=None, help="ODE steps (default: the pipeline's, 16)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--no-sim-a", action="store_true", help="skip SIM-A (no resemblyzer needed)")
    parser.add_argument("--no-wer", action="store_true", help="skip the Whisper WER column")
    parser.add_argument("--asr", default=DEFAULT_ASR, help="WER judge: 'default' (bundled Whisper tiny.en), a "
                        "faster-whisper size, or a folder")
    parser.add_argument("--prompt-layout", default="estimated", choices=PROMPT_LAYOUTS,
                        help="durations models: the prompt's phoneme timings as the pipeline estimates them, or the "
                             "corpus's true ones (oracle)")
    parser.add_argument("--target-layout", default="predicted", choices=TARGET_LAYOUTS,
                        help="durations models: the target's phoneme frames from the duration predictor, or the "
                             "corpus's true ones (oracle: what a perfect predictor would give)")
    parser.add_argument("--prompt-keep", default=DEFAULT_PROMPT_KEEP, choices=PROMPT_KEEPS,
                        help="durations models: which end of a long reference is kept in context (the pipeline's "
                             "default: omnitalker/pipeline/text_layout.py)")
    parser.add_argument("--prompt-share", type=float, default=MAX_PROMPT_SHARE,
                        help="durations models: the most of [prompt | target] the kept reference may be, in (0, 1) "
                             "(the pipeline's: omnitalker/pipeline/text_layout.py)")
    parser.add_argument("--guidance", default="", help="CFG of the model systems, e.g. 'text=2,audio=0,visual=0,"
                        "interval=0:0.5' (unnamed fields keep the defaults: omnitalker/flow/guidance.py)")
    parser.add_argument("--mel-smoothing", default=None,
                        help="taps of the low-pass on generated mels, e.g. '0.25,0.5,0.25', or 'none' (default: the "
                             "pipeline's mel_smoothing config: omnitalker/pipeline/mel_smoothing.py)")
    parser.add_argument("--match-reference-motion", default=None, choices=("on", "off"),
                        help="scale the generated head motion to the whole reference's size (default: the pipeline's "
                             "match_reference_motion config: omnitalker/pipeline/motion_spread.py)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    from omnitalker.flow.guidance import GuidanceConfig

    try:
        guidance = GuidanceConfig.parse(args.guidance)
    except ValueError as error:
        raise SystemExit(f"error: --guidance: {error}") from error
    try:  # before any model is loaded
        check_prompt_share(args.prompt_share)
    except ValueError as error:
        raise SystemExit(f"error: --prompt-share: {error}") from error
    data_dir = Path(args.data_dir)
    if not (data_dir / "index.json").is_file():
        raise SystemExit(f"error: no corpus at {data_dir} (index.json missing). Generate it with:\n  "
                         + GENERATE_COMMAND.format(dir=data_dir))
    recognizer_dir = Path(args.recognizer)
    if not (recognizer_dir / "config.json").is_file():
        raise SystemExit(f"error: no CTC recognizer at {recognizer_dir}. Train one with:\n  "
                         + TRAIN_RECOGNIZER_COMMAND.format(data=data_dir, out=recognizer_dir))
    if not (Path(args.pipeline) / "model_index.json").is_file():
        raise SystemExit(f"error: {args.pipeline} is not a pipeline folder (model_index.json missing)")

    from omnitalker.pipeline import OmniTalkerPipeline

    from .recognizer import CTCRecognizer
    from .speaker_similarity import SpeakerSimilarity

    pipe = OmniTalkerPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    if args.mel_smoothing is not None:
        try:
            pipe.register_to_config(mel_smoothing=parse_mel_smoothing(args.mel_smoothing))
        except ValueError as error:
            raise SystemExit(f"error: --mel-smoothing: {error}") from error
    if args.match_reference_motion is not None:
        pipe.register_to_config(match_reference_motion=args.match_reference_motion == "on")
    if pipe.vocoder is None and not (args.no_sim_a and args.no_wer):
        raise SystemExit(f"error: the pipeline at {args.pipeline} has no vocoder; SIM-A and WER need one "
                         "(or pass --no-sim-a --no-wer)")
    asr = None
    if not args.no_wer:
        from omnitalker.frontend.asr import load_recognizer

        try:
            asr = load_recognizer(args.asr)
        except ValueError as error:
            raise SystemExit(f"error: {error} (or pass --no-wer)") from error
    recognizer = CTCRecognizer.from_pretrained(recognizer_dir).eval()
    if recognizer.config.lang != "en":
        raise SystemExit(f"error: --recognizer {recognizer_dir} reads {recognizer.config.lang!r}, not English "
                         "(pass a Mandarin one as --recognizer-zh)")
    recognizer_zh_dir = Path(args.recognizer_zh)
    recognizer_zh = None
    if (recognizer_zh_dir / "config.json").is_file():
        recognizer_zh = CTCRecognizer.from_pretrained(recognizer_zh_dir).eval()
        if recognizer_zh.config.lang != "zh":
            raise SystemExit(f"error: --recognizer-zh {recognizer_zh_dir} reads {recognizer_zh.config.lang!r}: "
                             "train one with python -m omnitalker.eval.train_recognizer --lang zh")
    else:
        print(f"note: no Mandarin recognizer at {recognizer_zh_dir}: Mandarin items get no CER (train one with "
              f"python -m omnitalker.eval.train_recognizer --lang zh --data-dir {data_dir} --out {recognizer_zh_dir})")
    similarity = None if args.no_sim_a else SpeakerSimilarity()
    steps = args.steps if args.steps is not None else pipe.scheduler.config.num_inference_steps
    splits = list(EVAL_SPLITS) if args.split == "val" else [args.split]
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    _print_judge_cer("recognizer", recognizer_dir)
    if recognizer_zh is not None:
        _print_judge_cer("Mandarin recognizer (pinyin)", recognizer_zh_dir)
    result = evaluate(pipe, recognizer, data_dir, splits, args.max_samples, steps, args.seed, systems, similarity,
                      asr=asr, prompt_layout=args.prompt_layout, guidance=guidance, recognizer_zh=recognizer_zh,
                      prompt_keep=args.prompt_keep, target_layout=args.target_layout, prompt_share=args.prompt_share)
    result["config"].update(pipeline=str(args.pipeline), recognizer=str(recognizer_dir),
                            recognizer_zh=None if recognizer_zh is None else str(recognizer_zh_dir),
                            wer_asr=None if asr is None else args.asr,
                            mel_smoothing=pipe.config.get("mel_smoothing"),
                            match_reference_motion=bool(pipe.config.get("match_reference_motion")))
    print(markdown_table(result))
    if result["wrong_sentence_cer"]:
        print("chance level, CER of fluent speech of the wrong sentence: "
              + ", ".join(f"{split} {cer:.3f}" for split, cer in result["wrong_sentence_cer"].items()))
    if result["wrong_sentence_cer_zh"]:
        print("Mandarin chance level (pinyin CER of the wrong sentence): "
              + ", ".join(f"{split} {cer:.3f}" for split, cer in result["wrong_sentence_cer_zh"].items()))
    if args.out:
        Path(args.out).write_text(json.dumps(_json_safe(result), indent=1, ensure_ascii=False))
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
