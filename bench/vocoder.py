"""Vocoder speed (and Griffin-Lim quality) on this machine: seconds of audio per second of compute.

Decodes the log-mel of 10 s of speech (espeak-ng through omnitalker.frontend.espeak when libespeak-ng is
installed, otherwise a synthetic vowel sequence) with
  - the real-size VocosVocoder (vocos-mel-24khz architecture, 13.5 M parameters, random weights: the
    speed is what matters here, the audio is noise),
  - GriffinLimVocoder at several iteration counts, plus plain Griffin-Lim (momentum 0) for reference,
and, as the baseline measured in the same run, one torch.istft of a spectrogram of the same length
(the cheapest possible "vocoder": the ISTFT that every one of them ends with).

Quality (Griffin-Lim only) compares the mel of the decoded audio with the input mel: mean absolute
log-mel difference and spectral convergence ||M' - M|| / ||M|| on the magnitude mel.

    python bench/vocoder.py                  # table on stdout, JSON in bench/results/vocoder.json
    python bench/vocoder.py --seconds 5 --repeats 5 --threads 1
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
import torch

from omnitalker.eval.spectral import mel_distances
from omnitalker.frontend.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, log_mel_spectrogram
from omnitalker.io.audio import load_audio
from omnitalker.models.vocoder import GriffinLimVocoder, VocosVocoder

RESULTS_PATH = Path(__file__).parent / "results" / "vocoder.json"
SPEECH_TEXT = (
    "The quick brown fox jumps over the lazy dog. A talking head needs a voice, and the vocoder turns "
    "every mel frame into sound. Griffin-Lim guesses the phase; Vocos predicts it."
)
GRIFFIN_LIM_ITERATIONS = (0, 8, 16, 32, 64)
PLAIN_GRIFFIN_LIM_ITERATIONS = 32  # momentum 0, to show what the fast variant buys


def speech(seconds: float) -> tuple[torch.Tensor, str]:
    """(wave of exactly `seconds` at 24 kHz, description). espeak-ng speech, looped to length."""
    try:
        from omnitalker.frontend.espeak import synthesize

        utterance = synthesize(SPEECH_TEXT, voice="en-us")
        wave, source = load_audio(utterance.audio, sample_rate=utterance.sample_rate), "espeak-ng en-us"
    except (OSError, ImportError, RuntimeError) as error:  # no libespeak-ng on this machine
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)  # gliding pitch, Hz
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        harmonics = sum(np.cos(k * phase) / k for k in range(1, 40))
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # syllable-rate loudness
        wave = torch.tensor(0.1 * harmonics * envelope, dtype=torch.float32)
        source = f"synthetic harmonic tone ({error.__class__.__name__}: no espeak-ng)"
    num_samples = int(seconds * SAMPLE_RATE)
    repeats = -(-num_samples // wave.shape[0])  # ceil
    return wave.repeat(repeats)[:num_samples], source


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of `fn()` over `repeats` runs after one warm-up, and its last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio length to decode")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    wave, source = speech(args.seconds)
    mel = log_mel_spectrogram(wave)  # 1 100 t
    audio_seconds = (mel.shape[-1] - 1) * HOP_LENGTH / SAMPLE_RATE
    rows = []

    window = torch.hann_window(N_FFT)
    spectrum = torch.stft(wave[None], N_FFT, HOP_LENGTH, N_FFT, window, center=True, return_complex=True)
    baseline_seconds, _ = timed(lambda: torch.istft(spectrum, N_FFT, HOP_LENGTH, N_FFT, window), args.repeats)
    rows.append({"name": "baseline: one torch.istft", "seconds": baseline_seconds})

    torch.manual_seed(0)
    vocos = VocosVocoder().eval()  # real-size architecture, random weights
    num_parameters = sum(p.numel() for p in vocos.parameters())
    with torch.no_grad():
        vocos_seconds, _ = timed(lambda: vocos.decode(mel), args.repeats)
    rows.append({"name": f"Vocos {num_parameters / 1e6:.2f} M (random weights)", "seconds": vocos_seconds})

    settings = [(f"Griffin-Lim fast, {n} it", GriffinLimVocoder(n_iter=n)) for n in GRIFFIN_LIM_ITERATIONS]
    plain = GriffinLimVocoder(n_iter=PLAIN_GRIFFIN_LIM_ITERATIONS, momentum=0.0)
    settings.append((f"Griffin-Lim plain, {PLAIN_GRIFFIN_LIM_ITERATIONS} it", plain))
    for name, vocoder in settings:
        seconds, decoded = timed(lambda vocoder=vocoder: vocoder.decode(mel), args.repeats)
        l1, convergence = mel_distances(mel, decoded)
        rows.append({"name": name, "seconds": seconds, "log_mel_l1": l1, "spectral_convergence": convergence})

    for row in rows:
        row["audio_seconds_per_second"] = audio_seconds / row["seconds"]
        row["x_baseline_time"] = row["seconds"] / baseline_seconds

    machine = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "load_average_1min": os.getloadavg()[0],
    }
    print(f"{audio_seconds:.2f} s of audio ({source}), {args.repeats} runs each (median); {machine}")
    print(f"{'vocoder':38s} {'time s':>8s} {'audio s/s':>10s} {'x istft':>8s} {'mel L1':>7s} {'SC':>6s}")
    for row in rows:
        quality = (
            f"{row['log_mel_l1']:7.3f} {row['spectral_convergence']:6.3f}"
            if "log_mel_l1" in row
            else f"{'':7s} {'':6s}"
        )
        print(
            f"{row['name']:38s} {row['seconds']:8.3f} {row['audio_seconds_per_second']:10.1f} "
            f"{row['x_baseline_time']:8.1f} {quality}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "audio_seconds": audio_seconds,
        "source": source,
        "repeats": args.repeats,
        "machine": machine,
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
