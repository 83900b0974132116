"""Synthetic talking corpus: espeak-ng speech + rule-driven visual codes, as WebDataset shards.

There is no talking-head dataset on the project machines, so we make one, reproducibly:
every utterance is spoken by espeak-ng (audio + timed phonemes) and its mouth, head, lids, brows and
gaze are driven by the same phoneme timeline in a per-speaker style (:mod:`omnitalker.data.motion`).

    python -m omnitalker.data.synthetic --out data/synth --hours 0.5 --speakers 24 --langs en,zh --seed 0

Output folder::

    speakers.json                       every speaker's voice and visual style
    index.json                          per split: shards, sample keys and frame counts (for batching)
    {split}-{shard:05d}.tar             WebDataset shards; per sample:
        <key>.json                      text, lang, speaker, duration, num_frames, phonemes, word_starts
        <key>.mel.npy                   float16 (n, 100) log-mel at 93.75 frames/s
        <key>.codes.npy                 float32 (T, 58) visual codes at 30 fps
        <key>.wav                       (with --with-audio) 16-bit PCM at 24 kHz

Splits: ``train``; ``val_texts`` (training speakers, unseen sentences); ``val_speakers`` (unseen
speakers). Deterministic for a seed. Shards are written to a temporary name and renamed when
complete, so a partial shard is never visible.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from omnitalker.frontend.audio import SAMPLE_RATE, log_mel_spectrogram
from omnitalker.frontend.espeak import EspeakUtterance, synthesize_many
from omnitalker.frontend.face.codes import CODE_FPS
from omnitalker.frontend.phonemes import espeak_text
from omnitalker.io.audio import load_audio

from .motion import (
    DEFAULT_STYLE_RANGES,
    STYLE_RANGES,
    VOICE_VARIANTS,
    SpeakerStyle,
    check_voice_variants,
    random_speaker,
    synthesize_codes,
)
from .sentences import SentenceGrammar

VAL_TEXT_FRACTION = 0.05  # share of each training speaker's sentences held out as val_texts
VAL_SPEAKER_FRACTION = 0.15  # share of speakers held out entirely (at least one)
SAMPLES_PER_SHARD = 256
MIN_SECONDS = 1.0
MAX_SECONDS = 12.0
SPLITS = ("train", "val_texts", "val_speakers")
PLAN_CHUNK = 64  # at most this many utterances are planned and spoken together (in parallel processes)
TYPICAL_UTTERANCE_SECONDS = 3.0  # to plan only about as many utterances as the remaining budget needs


@dataclass
class Sample:
    key: str
    text: str
    lang: str
    speaker: str
    audio: np.ndarray  # float32 at SAMPLE_RATE
    mel: np.ndarray  # float16 (n, 100)
    codes: np.ndarray  # float32 (T, 58)
    phonemes: list[dict]
    word_starts: list[float] = field(default_factory=list)  # seconds, espeak's word events


TEXT_SOURCES = ("mixed", "faker", "grammar")


class TextSource:
    """Offline sentences: Faker's en_US / zh_CN lorem (wide vocabulary, word salad) and/or the template grammar
    of :mod:`omnitalker.data.sentences` (natural sentences); ``mixed`` flips a coin per sentence."""

    def __init__(self, lang: str, seed: int, kind: str = "faker"):
        from faker import Faker

        if kind not in TEXT_SOURCES:
            raise ValueError(f"text source must be one of {TEXT_SOURCES}, got {kind!r}")
        self.lang, self.kind = lang, kind
        self.faker = Faker("zh_CN" if lang == "zh" else "en_US")
        self.faker.seed_instance(seed)
        self.grammar = SentenceGrammar(lang)

    def sentence(self, rng: np.random.Generator) -> str:
        if self.kind == "grammar" or (self.kind == "mixed" and rng.random() < 0.5):
            return " ".join(self.grammar.sentence(rng) for _ in range(int(rng.integers(1, 3))))
        if self.lang == "zh":
            return "，".join(self.faker.sentence().rstrip(".。") for _ in range(int(rng.integers(1, 3)))) + "。"
        return " ".join(self.faker.sentence(nb_words=int(rng.integers(4, 13))) for _ in range(int(rng.integers(1, 3))))


def speech_request(text: str, lang: str, style: SpeakerStyle) -> dict:
    """Keyword arguments of :func:`omnitalker.frontend.espeak.synthesize` for one utterance."""
    return dict(text=espeak_text(text, lang), voice=style.voice, rate=style.rate, pitch=style.pitch,
                pitch_range=style.pitch_range)


def make_sample(
    key: str, text: str, lang: str, style: SpeakerStyle, utt: EspeakUtterance, rng: np.random.Generator
) -> Sample:
    """Turn espeak's utterance into a corpus sample: 24 kHz audio, log-mel, and codes driven by the same phonemes."""
    audio = load_audio(utt.audio, sample_rate=utt.sample_rate).numpy()  # resampled to 24 kHz
    mel = log_mel_spectrogram(torch.from_numpy(audio)[None])[0].T  # n 100
    duration = len(audio) / SAMPLE_RATE
    codes = synthesize_codes(utt.phonemes, duration, style, rng, fps=CODE_FPS)
    phonemes = [{"phoneme": p.phoneme, "start": round(p.start, 4), "end": round(p.end, 4)} for p in utt.phonemes]
    words = [round(t, 4) for t in utt.word_starts]
    return Sample(key, text, lang, style.speaker_id, audio, mel.numpy().astype(np.float16), codes, phonemes, words)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _wav(audio: np.ndarray) -> bytes:
    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


class ShardWriter:
    """Writes samples into ``{split}-{i:05d}.tar`` shards, each renamed into place when complete."""

    def __init__(self, out: Path, split: str, with_audio: bool, samples_per_shard: int = SAMPLES_PER_SHARD):
        self.out, self.split, self.with_audio, self.per_shard = out, split, with_audio, samples_per_shard
        self.shards: list[dict] = []
        self._writer = None
        self._count = 0

    def _open(self) -> None:
        import webdataset as wds

        name = f"{self.split}-{len(self.shards):05d}.tar"
        self._tmp = self.out / f".{name}.partial"
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in close()
        self._writer = wds.TarWriter(self._file)
        self.shards.append({"name": name, "samples": []})

    def write(self, sample: Sample) -> None:
        if self._writer is None:
            self._open()
        meta = {
            "text": sample.text, "lang": sample.lang, "speaker": sample.speaker,
            "duration": len(sample.audio) / SAMPLE_RATE, "num_frames": len(sample.mel),
            "num_code_frames": len(sample.codes), "phonemes": sample.phonemes, "word_starts": sample.word_starts,
        }
        record = {"__key__": sample.key, "json": json.dumps(meta, ensure_ascii=False).encode(),
                  "mel.npy": _npy(sample.mel), "codes.npy": _npy(sample.codes)}
        if self.with_audio:
            record["wav"] = _wav(sample.audio)
        self._writer.write(record)
        self.shards[-1]["samples"].append({"key": sample.key, "num_frames": len(sample.mel)})
        self._count += 1
        if self._count % self.per_shard == 0:
            self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._file.close()
            os.replace(self._tmp, self.out / self.shards[-1]["name"])
            self._writer = None


def build_corpus(
    out: str | Path,
    hours: float,
    speakers: int,
    langs: tuple[str, ...] = ("en",),
    seed: int = 0,
    with_audio: bool = False,
    max_seconds: float = MAX_SECONDS,
    progress: bool = True,
    workers: int = 1,
    text_source: str = "faker",
    val_text_fraction: float = VAL_TEXT_FRACTION,
    voice_variants: tuple[str, ...] = VOICE_VARIANTS,
    style_ranges: str = DEFAULT_STYLE_RANGES,
) -> dict:
    """Generate the corpus; returns the index (also written to ``index.json``).

    ``voice_variants`` limits the espeak variants speakers are drawn from (e.g. only the female ones, to give
    training more of the high-pitched voices the demo model found hardest: CHANGELOG.md, stage 9; `bench/results/female_voices/`).
    ``style_ranges`` names the visual style ranges speakers are drawn from (``STYLE_RANGES`` in
    omnitalker/data/motion.py: "demo", what the bundled demo was trained on, or "people", widened to real people's).
    """
    check_voice_variants(voice_variants)
    if style_ranges not in STYLE_RANGES:
        raise ValueError(f"style ranges must be one of {', '.join(STYLE_RANGES)}; got {style_ranges!r}")
    if hours <= 0 or speakers < 2:
        raise ValueError("need hours > 0 and at least 2 speakers (one is held out for val_speakers)")
    unknown = set(langs) - {"en", "zh"}
    if unknown:
        raise ValueError(f"unsupported languages {sorted(unknown)}: choose from en, zh")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    styles = [random_speaker(rng, f"spk{i:03d}", langs[i % len(langs)], voice_variants, style_ranges)
              for i in range(speakers)]
    n_val_speakers = max(1, int(round(VAL_SPEAKER_FRACTION * speakers)))
    held_out = {s.speaker_id for s in styles[-n_val_speakers:]}
    (out / "speakers.json").write_text(json.dumps([s.to_dict() for s in styles], indent=1, ensure_ascii=False))

    sources = {lang: TextSource(lang, seed, text_source) for lang in langs}
    writers = {split: ShardWriter(out, split, with_audio) for split in SPLITS}
    budget = {split: 0.0 for split in SPLITS}
    total_budget = hours * 3600.0
    index = 0
    from tqdm.auto import tqdm

    bar = tqdm(total=round(total_budget), unit="s", desc="corpus", disable=not progress)
    while sum(budget.values()) < total_budget:
        plan = []
        remaining = total_budget - sum(budget.values())
        chunk = int(min(PLAN_CHUNK, max(2 * workers, remaining / TYPICAL_UTTERANCE_SECONDS + 1)))
        for item in range(index, index + chunk):
            style = styles[item % speakers]
            lang = "zh" if style.voice.startswith("cmn") else "en"
            item_rng = np.random.default_rng([seed, item])
            text = sources[lang].sentence(item_rng)
            if style.speaker_id in held_out:
                split = "val_speakers"
            else:
                split = "val_texts" if item_rng.random() < val_text_fraction else "train"
            plan.append((f"{split}_{item:07d}", split, text, lang, style, item_rng))
        index += chunk
        spoken = synthesize_many([speech_request(text, lang, style) for _, _, text, lang, style, _ in plan], workers)
        for (key, split, text, lang, style, item_rng), utt in zip(plan, spoken, strict=True):
            if sum(budget.values()) >= total_budget:
                break
            if not MIN_SECONDS <= utt.duration <= max_seconds:
                continue
            sample = make_sample(key, text, lang, style, utt, item_rng)
            seconds = len(sample.audio) / SAMPLE_RATE
            writers[split].write(sample)
            budget[split] += seconds
            bar.update(round(seconds))
    bar.close()
    for writer in writers.values():
        writer.close()
    result = {
        "seed": seed, "hours": hours, "langs": list(langs), "with_audio": with_audio, "text_source": text_source,
        "voice_variants": list(voice_variants), "style_ranges": style_ranges,
        "mel_frame_rate": SAMPLE_RATE / 256, "code_fps": CODE_FPS,
        "splits": {split: {"seconds": round(budget[split], 2), "shards": writers[split].shards} for split in SPLITS},
    }
    tmp = out / ".index.json.partial"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, out / "index.json")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--hours", type=float, default=0.5, help="total hours of speech over all splits")
    parser.add_argument("--speakers", type=int, default=24)
    parser.add_argument("--langs", default="en", help="comma-separated: en, zh; speaker i speaks langs[i %% len] "
                        "(en,en,zh = one Mandarin speaker in three)")
    parser.add_argument("--text-source", default="faker", choices=TEXT_SOURCES,
                        help="faker lorem, the natural-sentence grammar, or a coin flip per sentence")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    parser.add_argument("--val-text-fraction", type=float, default=VAL_TEXT_FRACTION,
                        help="share of the training speakers' sentences held out as val_texts (an evaluation corpus "
                             "made with the same --seed/--speakers/--langs has the same voices: raise this)")
    parser.add_argument("--voice-variants", default=",".join(VOICE_VARIANTS),
                        help="comma-separated espeak variants to draw voices from (default: all; f1,f2,f3,f4,f5 = "
                             "female voices only)")
    parser.add_argument("--style-ranges", default=DEFAULT_STYLE_RANGES, choices=list(STYLE_RANGES),
                        help="the visual style ranges speakers are drawn from (omnitalker/data/motion.py: demo = the "
                             "bundled demo's corpora, people = widened to real people's blinks, eyes, mouths, heads)")
    parser.add_argument("--with-audio", action="store_true", help="also store 24 kHz wav (needed for SIM-A)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel espeak-ng processes")
    args = parser.parse_args()
    try:
        index = build_corpus(args.out, args.hours, args.speakers, tuple(args.langs.split(",")), args.seed,
                             args.with_audio, args.max_seconds, workers=args.workers, text_source=args.text_source,
                             val_text_fraction=args.val_text_fraction,
                             voice_variants=tuple(v.strip() for v in args.voice_variants.split(",") if v.strip()),
                             style_ranges=args.style_ranges)
    except ValueError as error:  # a bad setting: say which, without a traceback
        parser.error(str(error))
    for split, info in index["splits"].items():
        n = sum(len(s["samples"]) for s in info["shards"])
        print(f"{split:13s} {n:6d} clips  {info['seconds'] / 60:7.1f} min  {len(info['shards'])} shards")


if __name__ == "__main__":
    main()
