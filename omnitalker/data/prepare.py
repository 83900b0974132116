"""Curate real talking-head videos into the training shard format (paper appendix B.1).

    python -m omnitalker.data.prepare --input VIDEOS --out DATASET [--num-shards N --shard-index I] [--workers K]

Per video (omnitalker/data/curation/ has one file per step):
  stage 1  scene cuts (PySceneDetect) + face tracking (MediaPipe, IoU > 0.5) -> single-face shots
  stage 2  voice activity (silero-vad) -> candidate clips; visual codes; active-speaker check
           (mouth opening vs speech energy, our stand-in for LightASD); transcript (sidecar .srt/.txt,
           else the offline speech recognizer: bundled Whisper tiny.en by default, --asr MODEL for another,
           --asr none to require sidecars); recognised clips also store word timings
  stage 3  filters: 1-30 s, chars/s bounds, face box > 15 % of the frame, SNR estimate (DNSMOS stand-in)

Output: the corpus layout of omnitalker.data.synthetic / omnitalker.training.data (index.json and
WebDataset tars with <key>.json, <key>.mel.npy, <key>.codes.npy; the json of a recognised clip holds
"words": [{"word", "start", "end"}] in seconds from the clip start), plus report.json / report.md:
clips and hours kept, drops per filter, failures per file.

Scale: the sorted input list is dealt round-robin into N shards; shard I is processed by one command
(any scheduler: SLURM array index, Ray task, Kubernetes job index) with K local worker processes.
A shard is written under DATASET/parts/.I-of-N.partial and renamed to parts/I-of-N when complete
(atomic: a partial shard is never visible); a shard whose folder exists is skipped (resumable). Each
finished shard then rebuilds index.json and the report from every finished shard, under a file lock.
Bad inputs (unreadable, no audio, no face ...) are reported per file and never stop the run.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import multiprocessing
import os
import re
import shutil
import sys
import time
import traceback
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from omnitalker.frontend.audio import SAMPLE_RATE, log_mel_spectrogram
from omnitalker.frontend.face.codes import (
    CODE_FPS,
    MEL_FPS,
    FaceIdentity,
    encode_codes,
    resample_codes,
    smooth_codes,
)

from ..io.audio import load_audio
from ..io.video import iter_frames, probe_video
from .curation.active_speaker import speaker_correlation
from .curation.filters import DropReason, chars_per_second, failure_before_transcript, first_failure
from .curation.quality import estimate_snr_db
from .curation.shots import Shot, ShotBuilder
from .curation.transcripts import Transcripts
from .curation.vad import VoiceActivity
from .synthetic import Sample, ShardWriter

DEFAULT_ASR = "default"  # omnitalker.frontend.asr.load_recognizer: the bundled Whisper tiny.en (English); "none": sidecars only

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".flv", ".mpg", ".mpeg", ".ts")
ANALYSIS_MAX_SIDE = 512  # frames are analysed with the longer side scaled to at most this
DEFAULT_FPS = 25.0  # when the container does not say
VAL_FRACTION = 0.05  # clips (by key hash) held out as the val_texts split
SPLITS = ("train", "val_texts")
HASH_BUCKETS = 10_000
PARTS_DIR = "parts"
MANIFEST = "manifest.json"
VFR_TOLERANCE = 0.1  # frame intervals varying more than 10 % around the median: variable frame rate


# ----------------------------------------------------------------------------- one video
@dataclass
class FileResult:
    """What happened to one input video; `samples` are the kept clips (dropped before the manifest)."""

    file: str
    status: str = "ok"  # ok | failed
    error: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    transcript_source: str = "none"
    candidates: list[dict] = field(default_factory=list)  # every shot drop and candidate clip, with its fate
    timings: dict[str, float] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list, repr=False)


def source_id(relative: str) -> str:
    """Readable stem + hash of the relative path: unique per video, no dots (WebDataset splits keys on them)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(relative).stem)[:40]
    return f"{stem}_{zlib.crc32(relative.encode()):08x}"


def clip_key(relative: str, shot: int, clip: int) -> str:
    return f"{source_id(relative)}_{shot:03d}_{clip:03d}"


def split_of(key: str, val_fraction: float) -> str:
    return "val_texts" if zlib.crc32(key.encode()) % HASH_BUCKETS < val_fraction * HASH_BUCKETS else "train"


def _outside(regions: list[tuple[float, float]], total: float) -> list[tuple[float, float]]:
    """The complement of sorted regions inside [0, total]."""
    gaps, cursor = [], 0.0
    for start, end in regions:
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < total:
        gaps.append((cursor, total))
    return gaps


class Curator:
    """Runs stages 1-3 on one video at a time; holds the models (face mesh, VAD, optional ASR)."""

    def __init__(self, recognizer=None, lang: str = "en", max_side: int = ANALYSIS_MAX_SIDE):
        from omnitalker.frontend.face.landmarks import FaceAnalyzer

        self.analyzer = FaceAnalyzer()
        self.vad = VoiceActivity()
        self.recognizer, self.lang, self.max_side = recognizer, lang, max_side

    def close(self) -> None:
        self.analyzer.close()

    def process(self, path: Path, relative: str, val_fraction: float = VAL_FRACTION) -> FileResult:
        """Never raises for a bad file: the error goes into the result."""
        result = FileResult(file=relative)
        try:
            self._process(path, relative, val_fraction, result)
        except Exception as error:  # one bad file must not stop the run
            result.status, result.samples = "failed", []
            result.error = f"{type(error).__name__}: {error}"
            if not isinstance(error, ValueError):
                traceback.print_exc(file=sys.stderr)
        return result

    def _process(self, path: Path, relative: str, val_fraction: float, result: FileResult) -> None:
        timings = result.timings
        tick = time.perf_counter()
        info = probe_video(path)
        if not info["has_audio"]:
            raise ValueError(f"{relative} has no audio track; talking-head clips need the speech")
        wave = load_audio(path).numpy()  # nw at 24 kHz
        timings["audio"] = time.perf_counter() - tick

        # ---- stage 1: decode once; scene cuts and faces per frame
        tick = time.perf_counter()
        builder = ShotBuilder(self.analyzer, info["fps"] or DEFAULT_FPS)
        for frame_time, frame in iter_frames(path, self.max_side, result.warnings):
            builder.add(frame_time, frame)
        decoded = time.perf_counter() - tick
        shots, shot_drops = builder.finish()
        timings.update(decode=decoded - sum(builder.seconds.values()), **builder.seconds)
        timings["shots"] = time.perf_counter() - tick - decoded
        times = np.asarray(builder.times)
        result.seconds = float(times[-1] + np.median(np.diff(times))) if len(times) > 1 else 0.0
        if len(times) > 2:
            intervals = np.diff(times)
            if np.abs(intervals - np.median(intervals)).max() > VFR_TOLERANCE * np.median(intervals):
                result.warnings.append("variable frame rate: frame timestamps are used throughout")
        for reason, seconds in shot_drops:
            result.candidates.append({"start": None, "end": None, "seconds": round(seconds, 3), "reason": reason.value})

        # ---- stage 2: voice activity over the whole file, then candidates per shot
        tick = time.perf_counter()
        regions = self.vad.speech_regions(wave, SAMPLE_RATE)
        timings["vad"] = time.perf_counter() - tick
        noise = [wave[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] for a, b in _outside(regions, len(wave) / SAMPLE_RATE)]
        noise = np.concatenate(noise) if noise else np.zeros(0, np.float32)
        transcripts = Transcripts.for_video(path, self.recognizer)
        result.transcript_source = transcripts.source
        per_shot = [
            [(max(a, shot.start_time), min(b, shot.end_time)) for a, b in regions if min(b, shot.end_time) > max(a, shot.start_time)]
            for shot in shots
        ]
        num_candidates = sum(len(spans) for spans in per_shot)
        for shot_index, (shot, spans) in enumerate(zip(shots, per_shot, strict=True)):
            if not spans:
                result.candidates.append({"start": round(shot.start_time, 3), "end": round(shot.end_time, 3),
                                          "seconds": round(shot.end_time - shot.start_time, 3),
                                          "reason": DropReason.NO_SPEECH.value})
                continue
            identity = None
            for clip_index, (start, end) in enumerate(spans):
                entry, sample, identity = self._candidate(
                    shot, start, end, wave, noise, transcripts, num_candidates, identity, timings
                )
                entry["key"] = clip_key(relative, shot_index, clip_index)
                result.candidates.append(entry)
                if sample is not None:
                    sample.key = entry["key"]
                    sample.speaker = source_id(relative)  # the source video stands in for the speaker
                    entry["split"] = split_of(sample.key, val_fraction)
                    result.samples.append(sample)

    def _candidate(self, shot: Shot, start: float, end: float, wave, noise, transcripts, num_candidates, identity, timings):
        """(report entry, Sample or None, the shot's FaceIdentity) of one speech span inside a shot."""
        seconds = end - start
        inside = (shot.timestamps >= start) & (shot.timestamps < end)
        clip_wave = wave[int(round(start * SAMPLE_RATE)) : int(round(end * SAMPLE_RATE))]
        entry = {"start": round(start, 3), "end": round(end, 3), "seconds": round(seconds, 3)}
        if inside.sum() < 3:
            entry["reason"] = DropReason.TOO_SHORT.value
            return entry, None, identity
        height, width = shot.frame_size
        boxes = shot.boxes[inside & shot.detected] if (inside & shot.detected).any() else shot.boxes[inside]
        area = float(np.median((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))) / (height * width)
        tick = time.perf_counter()
        correlation = speaker_correlation(shot.landmarks[inside], shot.timestamps[inside], wave, SAMPLE_RATE)
        timings["active_speaker"] = timings.get("active_speaker", 0.0) + time.perf_counter() - tick
        snr = estimate_snr_db(clip_wave, noise, SAMPLE_RATE)
        entry.update(face_area=round(area, 4), speaker_correlation=round(correlation, 3), snr_db=round(snr, 1))
        text, words = None, []
        if failure_before_transcript(seconds, area, correlation) is None:
            tick = time.perf_counter()  # transcripts (maybe ASR) only for clips that passed the cheap filters
            heard = transcripts.clip(start, end, clip_wave, SAMPLE_RATE, num_candidates)
            text, words = heard.text, heard.words
            if heard.error:
                entry["asr_error"] = heard.error
            timings["asr"] = timings.get("asr", 0.0) + time.perf_counter() - tick
        reason = first_failure(seconds, area, correlation, text, snr)
        entry.update(text=text, chars_per_second=round(chars_per_second(text, seconds), 2) if text else None,
                     reason=reason.value if reason else None)
        if reason is not None:
            return entry, None, identity

        tick = time.perf_counter()
        if identity is None:
            identity = FaceIdentity.from_landmarks(shot.landmarks, shot.frame_size, shot.detected)
        fps = (len(shot.timestamps) - 1) / max(float(shot.timestamps[-1] - shot.timestamps[0]), 1e-6)
        codes = smooth_codes(encode_codes(shot.landmarks[inside], identity), fps=fps)  # t 58
        num_code_frames = max(1, int(round(seconds * CODE_FPS)))
        codes = resample_codes(codes, fps, CODE_FPS, num_frames=num_code_frames, timestamps=shot.timestamps[inside])
        timings["codes"] = timings.get("codes", 0.0) + time.perf_counter() - tick
        tick = time.perf_counter()
        mel = log_mel_spectrogram(torch.from_numpy(np.ascontiguousarray(clip_wave))[None])[0].T  # n 100
        timings["mel"] = timings.get("mel", 0.0) + time.perf_counter() - tick
        sample = CuratedSample(key="", text=text, lang=self.lang, speaker="", audio=clip_wave.astype(np.float32),
                               mel=mel.numpy().astype(np.float16), codes=codes.astype(np.float32), phonemes=[],
                               word_starts=[word["start"] for word in words], words=words)
        return entry, sample, identity


# ----------------------------------------------------------------------------- shards
@dataclass
class CuratedSample(Sample):
    """A kept clip: the corpus sample plus its recognised words [{"word", "start", "end"}] (s from the clip start)."""

    words: list[dict] = field(default_factory=list)


class CuratedShardWriter(ShardWriter):
    """The corpus ShardWriter whose <key>.json also carries the clip's word timings ("words")."""

    def _open(self) -> None:
        super()._open()
        self._writer = _WordsInMeta(self._writer)

    def write(self, sample: Sample) -> None:
        if self._writer is None:
            self._open()
        self._writer.words = getattr(sample, "words", [])
        super().write(sample)


class _WordsInMeta:
    """Wraps the tar writer: adds the current sample's words to the json record it writes."""

    def __init__(self, writer):
        self.writer, self.words = writer, []

    def write(self, record: dict) -> None:
        meta = json.loads(record["json"])
        meta["words"] = self.words
        self.writer.write({**record, "json": json.dumps(meta, ensure_ascii=False).encode()})

    def close(self) -> None:
        self.writer.close()


def list_inputs(inputs: list[str]) -> list[tuple[Path, str]]:
    """(path, name relative to its input root) of every video, sorted by name: the order shards deal from."""
    found = []
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            found += [(path, path.relative_to(root).as_posix()) for path in root.rglob("*")
                      if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES]
        elif root.is_file():
            found.append((root, root.name))
        else:
            raise ValueError(f"input {root} does not exist: pass video files or folders of videos")
    found.sort(key=lambda pair: pair[1])
    names = [name for _, name in found]
    if len(set(names)) != len(names):
        raise ValueError("two inputs share a relative name; pass one folder, or files with distinct names")
    return found


def shard_files(files: list, num_shards: int, shard_index: int) -> list:
    """Round-robin: shard I gets files I, I+N, I+2N ... of the sorted list (every file in exactly one shard)."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need num_shards >= 1 and 0 <= shard_index < num_shards, got {num_shards}, {shard_index}")
    return files[shard_index::num_shards]


def part_name(shard_index: int, num_shards: int) -> str:
    return f"{shard_index:05d}-of-{num_shards:05d}"


_WORKER: dict = {}


def load_asr(asr_model: str | None, lang: str):
    """The recognizer for clips without sidecars (None for "none"); English-only models refuse --lang zh."""
    from omnitalker.frontend.asr import load_recognizer

    return load_recognizer(asr_model, language=None if lang == "en" else lang)


def check_asr(asr_model: str | None, lang: str) -> None:
    """Fail before any work when the recognizer cannot load or cannot read `lang` (a clear ValueError)."""
    try:
        recognizer = load_asr(asr_model, lang)
        if hasattr(recognizer, "load"):
            recognizer.load()
    except ValueError as error:
        raise ValueError(f"--asr {asr_model}: {error}. For curation: give .srt/.txt sidecar transcripts with "
                         "--asr none, or name a recognizer that reads --lang") from error


def _init_worker(asr_model: str | None, lang: str, one_thread: bool = True) -> None:
    if one_thread:  # worker processes: one core each (the caller's own process keeps its settings)
        torch.set_num_threads(1)
    _WORKER["curator"] = Curator(load_asr(asr_model, lang), lang)


def _work(job: tuple[str, str, float]) -> FileResult:
    path, relative, val_fraction = job
    return _WORKER["curator"].process(Path(path), relative, val_fraction)


def run_shard(files: list[tuple[Path, str]], out: Path, shard_index: int = 0, num_shards: int = 1,
              workers: int = 1, asr_model: str | None = DEFAULT_ASR, lang: str = "en",
              val_fraction: float = VAL_FRACTION, log=print) -> dict | None:
    """Process shard I of N into out/parts/I-of-N (atomically); None when it was already done."""
    out = Path(out)
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    name = part_name(shard_index, num_shards)
    other = [p.name for p in parts.iterdir() if not p.name.startswith(".") and not p.name.endswith(f"-of-{num_shards:05d}")]
    if other:
        raise ValueError(f"{out} already holds shards of another --num-shards ({other[0]}); keep N fixed per dataset")
    final = parts / name
    if final.is_dir():
        log(f"shard {name}: already done, skipped")
        return None
    check_asr(asr_model, lang)  # a broken or wrong-language recognizer stops the run here, not clip by clip
    partial = parts / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # left by a crashed run of this same shard
    partial.mkdir()
    mine = shard_files(files, num_shards, shard_index)
    jobs = [(str(path), relative, val_fraction) for path, relative in mine]
    writers = {split: CuratedShardWriter(partial, split, with_audio=False) for split in SPLITS}
    results = []
    start = time.perf_counter()
    if workers > 1 and len(jobs) > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(workers, len(jobs)), initializer=_init_worker, initargs=(asr_model, lang)) as pool:
            stream = pool.imap(_work, jobs)  # ordered: the output does not depend on worker timing
            results = _collect(stream, writers, log)
    else:
        _init_worker(asr_model, lang, one_thread=False)
        try:
            results = _collect(map(_work, jobs), writers, log)
        finally:
            _WORKER.pop("curator").close()
    for writer in writers.values():
        writer.close()
    manifest = {
        "part": name, "num_shards": num_shards, "shard_index": shard_index,
        "wall_seconds": round(time.perf_counter() - start, 2),
        "shards": {split: [{"name": f"{PARTS_DIR}/{name}/{s['name']}", "samples": s["samples"]}
                           for s in writers[split].shards] for split in SPLITS},
        "files": results,
    }
    _write_json(partial / MANIFEST, manifest)
    os.replace(partial, final)  # the whole shard appears at once
    log(f"shard {name}: {len(results)} files done")
    return manifest


def _collect(stream, writers: dict, log) -> list[dict]:
    results = []
    for result in stream:
        for sample, entry in zip(result.samples, [c for c in result.candidates if c.get("split")], strict=True):
            writers[entry["split"]].write(sample)
        kept = len(result.samples)
        log(f"  {result.file}: {result.status}" + (f" ({result.error})" if result.error else f", {kept} clips kept"))
        record = asdict(result)
        record.pop("samples")
        results.append(record)
    return results


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- index and report
def merge(out: Path) -> dict:
    """Rebuild index.json, report.json and report.md from every finished shard (under a file lock)."""
    out = Path(out)
    with open(out / ".merge.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent shard jobs finishing together each see the others
        manifests = [json.loads((p / MANIFEST).read_text()) for p in sorted((out / PARTS_DIR).iterdir())
                     if not p.name.startswith(".") and (p / MANIFEST).is_file()]
        splits = {split: {"seconds": 0.0, "shards": []} for split in SPLITS}
        for manifest in manifests:
            for split in SPLITS:
                for shard in manifest["shards"][split]:
                    splits[split]["shards"].append(shard)
                    splits[split]["seconds"] += sum(s["num_frames"] for s in shard["samples"]) / MEL_FPS
        for info in splits.values():
            info["seconds"] = round(info["seconds"], 2)
        index = {"source": "omnitalker.data.prepare", "mel_frame_rate": MEL_FPS, "code_fps": CODE_FPS,
                 "parts": [m["part"] for m in manifests], "splits": splits}
        report = build_report(manifests)
        _write_json(out / "index.json", index)
        _write_json(out / "report.json", report)
        tmp = out / f".report.md.{os.getpid()}.partial"
        tmp.write_text(format_report(report))
        os.replace(tmp, out / "report.md")
    return report


def build_report(manifests: list[dict]) -> dict:
    files = [f for m in manifests for f in m["files"]]
    dropped = {reason.value: {"count": 0, "seconds": 0.0} for reason in DropReason}
    kept_clips, kept_seconds, candidates = 0, 0.0, 0
    per_file = []
    for record in files:
        kept_here, dropped_here = 0, {}
        for entry in record["candidates"]:
            if entry["reason"] is None:
                kept_here += 1
                kept_seconds += entry["seconds"]
            else:
                dropped[entry["reason"]]["count"] += 1
                dropped[entry["reason"]]["seconds"] += entry["seconds"]
                dropped_here[entry["reason"]] = dropped_here.get(entry["reason"], 0) + 1
            candidates += entry["start"] is not None and entry["reason"] != DropReason.NO_SPEECH.value
        kept_clips += kept_here
        per_file.append({"file": record["file"], "status": record["status"], "error": record["error"],
                         "seconds": round(record["seconds"], 2), "kept": kept_here, "dropped": dropped_here,
                         "transcripts": record["transcript_source"], "warnings": record["warnings"]})
    for value in dropped.values():
        value["seconds"] = round(value["seconds"], 2)
    return {
        "files": {"total": len(files), "ok": sum(f["status"] == "ok" for f in files),
                  "failed": sum(f["status"] != "ok" for f in files)},
        "input_hours": round(sum(f["seconds"] for f in files) / 3600, 4),
        "candidate_clips": candidates,
        "kept": {"clips": kept_clips, "hours": round(kept_seconds / 3600, 4), "seconds": round(kept_seconds, 2)},
        "dropped": dropped,
        "parts": [m["part"] for m in manifests],
        "per_file": sorted(per_file, key=lambda f: f["file"]),
    }


def format_report(report: dict) -> str:
    lines = ["# Curation report", "",
             f"Files: {report['files']['total']} ({report['files']['ok']} processed, {report['files']['failed']} failed); "
             f"input {report['input_hours'] * 60:.1f} min.",
             f"Kept: **{report['kept']['clips']} clips, {report['kept']['hours']:.3f} h** "
             f"of {report['candidate_clips']} candidate clips.", "",
             "| dropped by | count | seconds |", "|---|---:|---:|"]
    lines += [f"| {reason} | {v['count']} | {v['seconds']:.1f} |" for reason, v in report["dropped"].items()]
    lines += ["", "| file | status | seconds | kept | dropped | notes |", "|---|---|---:|---:|---|---|"]
    for f in report["per_file"]:
        notes = f["error"] or "; ".join(f["warnings"])
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(f["dropped"].items()))
        lines.append(f"| {f['file']} | {f['status']} | {f['seconds']:.1f} | {f['kept']} | {dropped} | {notes} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="omnitalker.data.prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", nargs="+", required=True, help="video files and/or folders (searched recursively)")
    parser.add_argument("--out", required=True, help="dataset folder (created)")
    parser.add_argument("--num-shards", type=int, default=1, help="split the sorted inputs into N shards")
    parser.add_argument("--shard-index", type=int, default=0, help="which shard this command processes")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (one per core)")
    parser.add_argument("--asr", default=DEFAULT_ASR, help="speech recognizer for videos without a .srt/.txt "
                        "sidecar: 'default' (bundled Whisper tiny.en, English), a faster-whisper size such as 'small' "
                        "(other languages), a folder, or 'none' (sidecars required)")
    parser.add_argument("--lang", default="en", help="language tag stored with every clip")
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION, help="clips held out as val_texts")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error("--val-fraction must be in [0, 1)")
    try:
        files = list_inputs(args.input)
        run_shard(files, Path(args.out), args.shard_index, args.num_shards, args.workers, args.asr, args.lang,
                  args.val_fraction)
    except ValueError as error:
        parser.error(str(error))
    report = merge(Path(args.out))
    print(f"kept {report['kept']['clips']} clips ({report['kept']['hours']:.3f} h) from {report['files']['total']} "
          f"files in {len(report['parts'])}/{args.num_shards} shards; report: {Path(args.out) / 'report.md'}")
    return report


if __name__ == "__main__":
    main()
