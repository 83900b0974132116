"""The bundled demo model says the words: its outputs for the committed examples, judged by a recognizer no
one here trained (Whisper tiny.en, bundled offline). A regression to mumbling fails here.

The bounds are generous (the demo is a 4.5 M model after 21,400 CPU updates, judged through Griffin-Lim), and
well below what mumbled or unrelated speech scores (WER ~1 and above): BENCHMARKS.md ("Demo checkpoint, durations").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "weights" / "omnitalker-demo"
EXAMPLES = ROOT / "examples"
MAX_MEAN_WER = 0.6  # mean of WERs capped at 1, measured 0.26 (see the test); mumbled speech scores ~1
MAX_BEST_WER = 0.35  # measured 0.00: at least one output is nearly all right
STEPS = 16


@pytest.fixture(scope="module")
def pipe():
    from omnitalker import OmniTalkerPipeline

    return OmniTalkerPipeline.from_pretrained(DEMO)


@pytest.fixture(scope="module")
def recognizer():
    from omnitalker.frontend.asr import default_recognizer

    return default_recognizer()


def _wer(recognizer, wave: np.ndarray, sample_rate: int, text: str) -> float:
    from omnitalker.eval.wer import word_error_rate

    try:
        heard = recognizer.transcribe(wave, sample_rate, confident_only=False)  # a judge: what it heard
    except ValueError:  # no words at all
        heard = ""
    return word_error_rate(text, heard)


def _english_examples() -> list[dict]:
    manifest = json.loads((EXAMPLES / "examples.json").read_text())
    items = [{"reference_video": EXAMPLES / e["video"], "reference_text": e["reference_text"], "text": e["text"]}
             for e in manifest["talk_video"]]
    items += [{"reference_image": EXAMPLES / e["image"], "reference_audio": EXAMPLES / e["voice"],
               "reference_text": e["reference_text"], "text": e["text"]}
              for e in manifest["talk_photo"] if e["text"].isascii()]
    return items


def _example_outputs(pipe) -> list[tuple[np.ndarray, int, str]]:
    outputs = []
    for example in _english_examples():
        example = dict(example)
        text = example.pop("text")
        out = pipe(text, **{k: str(v) if isinstance(v, Path) else v for k, v in example.items()},
                   num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0))
        outputs.append((out.audio[0], out.sample_rate, text))
    # a real photo: scikit-image's public-domain portrait of Eileen Collins (uncropped), with the example voice
    from skimage import data

    text = "Nice to meet you, I hope you have a good day."
    photo_voice = json.loads((EXAMPLES / "examples.json").read_text())["talk_photo"][0]
    out = pipe(text, reference_image=data.astronaut(), reference_audio=str(EXAMPLES / photo_voice["voice"]),
               reference_text=photo_voice["reference_text"], num_inference_steps=STEPS,
               generator=torch.Generator().manual_seed(0))
    assert out.frames[0].shape[0] > 0
    outputs.append((out.audio[0], out.sample_rate, text))
    return outputs


def test_demo_says_the_words(pipe, recognizer):
    """The committed English examples + a real photo. Measured with the shipped pipeline (21,400 updates, mel
    smoothing on; two threads of an Ice Lake Xeon), WER of video / photo / real photo: 0.36 / 0.50 / 0.00 at seed 0,
    and 0.09 / 0.92 / 0.00, 0.18 / 0.42 / 0.00, 0.27 / 0.42 / 0.00 at seeds 1-3 (mean 0.26). Each is capped at 1
    for the mean (Whisper inserts words into unclear speech, and the exact output varies with the CPU). Earlier
    demos, with and without smoothing, on other CPUs: BENCHMARKS.md, "Demo checkpoint, durations layout"."""
    wers = [_wer(recognizer, wave, rate, text) for wave, rate, text in _example_outputs(pipe)]
    capped = [min(wer, 1.0) for wer in wers]  # insertions into unclear speech must not dominate the mean
    assert np.mean(capped) <= MAX_MEAN_WER and min(wers) <= MAX_BEST_WER, f"the demo model mumbles: WERs {wers}"
