"""End to end: `python -m omnitalker.eval` and `python -m omnitalker.eval.train_recognizer` on a tiny corpus made
with omnitalker.data.synthetic, a tiny random pipeline and a tiny recognizer, all in tmp folders."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch

from omnitalker.eval.__main__ import main as eval_main
from omnitalker.eval.benchmark import SYSTEMS
from omnitalker.eval.recognizer import CTCRecognizer
from omnitalker.eval.train_recognizer import main as train_main
from omnitalker.eval.train_recognizer import read_split

HAS_RESEMBLYZER = importlib.util.find_spec("resemblyzer") is not None
# seed 0, 3 speakers, 54 s: val_texts holds 1 clip of spk000 (who has train clips), val_speakers 3 of spk002
CORPUS = dict(hours=0.015, speakers=3, seed=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from omnitalker.data.synthetic import build_corpus

    folder = tmp_path_factory.mktemp("corpus")
    build_corpus(folder, progress=False, workers=1, **CORPUS)
    assert read_split(folder, "val_texts") and len(read_split(folder, "val_speakers")) >= 2
    return folder


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    from omnitalker.pipeline import OmniTalkerPipeline
    from tests.pipeline_fixtures import get_dummy_components

    folder = tmp_path_factory.mktemp("pipe")
    OmniTalkerPipeline(**get_dummy_components()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def recognizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rec")
    torch.manual_seed(0)
    CTCRecognizer(dim=16, num_conv_blocks=1, hidden_dim=8).save_pretrained(folder)
    return folder


def test_eval_cli_end_to_end(corpus, pipeline_dir, recognizer_dir, tmp_path, capsys):
    out = tmp_path / "results.json"
    args = ["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
            "--split", "val", "--max-samples", "2", "--steps", "1", "--out", str(out)]
    eval_main(args + ([] if HAS_RESEMBLYZER else ["--no-sim-a"]))
    printed = capsys.readouterr().out
    assert "| val_texts | reference |" in printed and "| val_speakers | no_reference |" in printed
    assert "| CER | CER zh | WER (95 % CI) | WER / ground truth (95 % CI) |" in printed

    result = json.loads(out.read_text())
    assert result["config"]["steps"] == 1 and result["config"]["systems"] == list(SYSTEMS)
    assert set(result["results"]) == {"val_texts", "val_speakers"}
    for split, systems in result["results"].items():
        assert set(systems) == set(SYSTEMS), split
        for metrics in systems.values():
            assert metrics["items"] == 1
            assert 0.0 <= metrics["cer"] <= 10.0
            assert 0.0 <= metrics["wer"] <= 10.0  # Whisper on the vocoded audio (English corpus)
            assert metrics["wer_ci"] is None  # one item: no interval
            assert metrics["p_fid"] >= 0 and metrics["e_fid"] >= 0
            assert abs(metrics["sync_lag"]) <= 10
        # ground truth and the cascade are the same espeak audio: same length, same voice embedding
        assert systems["ground_truth"]["dur_err"] == 0.0
        assert systems["cascade"]["dur_err"] == 0.0
        assert systems["cascade"]["cer"] == pytest.approx(systems["ground_truth"]["cer"])
        # one item per split: the "wrong sentence" pairs it with itself, so chance level = its own CER
        assert result["wrong_sentence_cer"][split] == pytest.approx(systems["ground_truth"]["cer"])
        assert all(abs(metrics["expert_lag"]) <= 10 for metrics in systems.values())
        if HAS_RESEMBLYZER:
            assert systems["cascade"]["sim_a"] == pytest.approx(systems["ground_truth"]["sim_a"], abs=1e-6)
            assert 0.5 < systems["ground_truth"]["sim_a"] <= 1.0  # same speaker, another utterance
    items = result["items"]
    assert [item["split"] for item in items] == ["val_texts", "val_speakers"]
    for item in items:
        assert item["prompt"] != item["key"]
        assert isinstance(item["reference"]["transcript"], str)
        assert isinstance(item["reference"]["whisper_transcript"], str) and item["reference"]["wer_words"] > 0
        assert math.isfinite(item["reference"]["dur_err"])
    assert result["config"]["wer_asr"] == "default"


def test_eval_cli_is_reproducible_for_a_seed(corpus, pipeline_dir, recognizer_dir):
    args = ["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
            "--split", "val_speakers", "--max-samples", "1", "--steps", "1", "--no-sim-a", "--no-wer",
            "--systems", "reference,no_reference"]
    first, second = eval_main(args), eval_main(args)
    assert first["results"] == second["results"]
    assert first["results"]["val_speakers"]["reference"]["wer"] is None  # --no-wer
    other = eval_main(args[:-2] + ["--seed", "5", "--systems", "reference"])
    assert other["results"]["val_speakers"]["reference"]["e_fid"] != first["results"]["val_speakers"]["reference"]["e_fid"]


def test_a_whole_split_can_be_evaluated(corpus):
    """--max-samples >= the split's size: every clip is an item, each prompted by another utterance of its speaker."""
    from omnitalker.eval.benchmark import plan_items

    clips = read_split(corpus, "val_speakers")
    items, pools = plan_items(corpus, ["val_speakers"], len(clips) + 5)
    assert sorted(item.clip.key for item in items) == sorted(clip.key for clip in clips)
    for item in items:
        assert item.prompt.speaker == item.clip.speaker and item.prompt.key != item.clip.key
    assert set(pools) == {clip.speaker for clip in clips}


def test_eval_cli_explains_missing_inputs(corpus, pipeline_dir, recognizer_dir, tmp_path):
    with pytest.raises(SystemExit, match="python -m omnitalker.data.synthetic"):
        eval_main(["--pipeline", str(pipeline_dir), "--data-dir", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit, match="python -m omnitalker.eval.train_recognizer"):
        eval_main(["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(tmp_path)])
    with pytest.raises(SystemExit, match="model_index.json"):
        eval_main(["--pipeline", str(tmp_path), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir)])
    with pytest.raises(SystemExit, match="--no-wer"):
        eval_main(["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
                   "--asr", str(tmp_path / "no-such-model")])
    with pytest.raises(SystemExit, match="--mel-smoothing: .*odd number"):
        eval_main(["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
                   "--mel-smoothing", "0.5,0.5", "--no-sim-a"])
    for share in ("0", "1", "-0.2"):
        with pytest.raises(SystemExit, match="--prompt-share: the prompt share must be in"):
            eval_main(["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
                       "--prompt-share", share, "--no-sim-a"])
    with pytest.raises(ValueError, match="unknown systems"):
        eval_main(["--pipeline", str(pipeline_dir), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
                   "--systems", "magic", "--no-sim-a"])


def test_train_recognizer_cli(corpus, tmp_path):
    results = train_main(["--data-dir", str(corpus), "--out", str(tmp_path / "rec"), "--steps", "3",
                          "--max-minutes", "2", "--log-every", "1"])
    assert results["steps"] == 3
    assert 0.0 <= results["cer_val_texts"] and 0.0 <= results["cer_val_speakers"]
    saved = json.loads((tmp_path / "rec" / "training_results.json").read_text())
    assert saved == results
    model = CTCRecognizer.from_pretrained(tmp_path / "rec")
    assert len(model.transcribe([torch.zeros(50, 100)])) == 1
    with pytest.raises(ValueError, match="steps"):
        train_main(["--data-dir", str(corpus), "--out", str(tmp_path / "x"), "--steps", "0"])


@pytest.mark.parametrize("prompt_layout, target_layout, smoothing, motion, share",
                         [("estimated", "predicted", "0.25,0.5,0.25", "on", "0.3"),
                          ("oracle", "oracle", "none", "off", "0.5")])
def test_eval_runs_a_durations_pipeline(corpus, recognizer_dir, tmp_path, prompt_layout, target_layout, smoothing,
                                        motion, share):
    """A phoneme/duration model: prompt and target laid out as the pipeline does, or with the corpus's true timings
    (then the generated length is the ground truth's); the generated mels smoothed and the head motion matched to
    the reference as asked (``--mel-smoothing``, ``--match-reference-motion``), recorded in the results."""
    from omnitalker.pipeline import OmniTalkerPipeline
    from tests.pipeline_fixtures import get_dummy_components

    folder = tmp_path / "pipe"
    OmniTalkerPipeline(**get_dummy_components(text_layout="durations")).save_pretrained(folder)
    out = tmp_path / "results.json"
    eval_main(["--pipeline", str(folder), "--data-dir", str(corpus), "--recognizer", str(recognizer_dir),
               "--split", "val_speakers", "--max-samples", "1", "--steps", "1", "--systems", "reference,no_reference",
               "--no-sim-a", "--no-wer", "--prompt-layout", prompt_layout, "--target-layout", target_layout,
               "--out", str(out), "--prompt-share", share,
               "--mel-smoothing", smoothing, "--match-reference-motion", motion])
    result = json.loads(out.read_text())
    assert result["config"]["prompt_share"] == float(share)
    assert result["config"]["match_reference_motion"] is (motion == "on")
    assert result["config"]["prompt_layout"] == prompt_layout
    assert result["config"]["target_layout"] == target_layout
    assert result["config"]["mel_smoothing"] == (None if smoothing == "none" else [0.25, 0.5, 0.25])
    for metrics in result["results"]["val_speakers"].values():
        assert metrics["items"] == 1 and metrics["dur_err"] >= 0
        if target_layout == "oracle":  # the true timings span the ground truth's frames exactly
            assert metrics["dur_err"] == 0


def test_prompt_share_sets_how_much_of_the_reference_is_kept(corpus):
    """``--prompt-share`` reaches the cut: a larger share keeps more of each reference, never more than all of it."""
    from omnitalker.eval.benchmark import duration_layouts, plan_items
    from omnitalker.pipeline import OmniTalkerPipeline
    from tests.pipeline_fixtures import get_dummy_components

    pipe = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"))
    items, _ = plan_items(corpus, ["val_speakers"], 4)
    kept = {share: [window.stop - window.start for _, window in
                    duration_layouts(pipe, items, True, "oracle", "tail", "oracle", share)]
            for share in (0.1, 0.6)}
    prompts = [len(item.prompt.mel) for item in items]
    assert all(short <= long <= whole for short, long, whole in zip(kept[0.1], kept[0.6], prompts, strict=True))
    assert sum(kept[0.6]) > sum(kept[0.1])


# ------------------------------------------------------------------------------------------- Mandarin judge

# all Mandarin, 144 s: train 16 clips (69 s, enough for the sync expert), val_texts 7, val_speakers 11
ZH_CORPUS = dict(hours=0.04, speakers=3, seed=0, langs=("zh",), val_text_fraction=0.25)


@pytest.fixture(scope="module")
def zh_corpus(tmp_path_factory):
    from omnitalker.data.synthetic import build_corpus

    folder = tmp_path_factory.mktemp("zh_corpus")
    build_corpus(folder, progress=False, workers=1, **ZH_CORPUS)
    assert read_split(folder, "val_texts") and read_split(folder, "val_speakers")
    return folder


@pytest.fixture(scope="module")
def zh_recognizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rec_zh")
    torch.manual_seed(0)
    CTCRecognizer(dim=16, num_conv_blocks=1, hidden_dim=8, lang="zh").save_pretrained(folder)
    return folder


def test_train_recognizer_zh(zh_corpus, corpus, tmp_path):
    """--lang zh trains on Mandarin clips with pinyin transcripts, saves lang=zh, keeps held-out sentences out."""
    results = train_main(["--lang", "zh", "--data-dir", str(zh_corpus), "--extra-data-dir", str(zh_corpus),
                          "--held-out-data-dir", str(zh_corpus), "--out", str(tmp_path / "rec"), "--steps", "2",
                          "--log-every", "1"])
    assert results["lang"] == "zh" and results["steps"] == 2
    # the extra corpus adds its train clips again but none of its val_texts / val_speakers sentences
    assert results["train_clips"] == 2 * len(read_split(zh_corpus, "train"))
    assert 0.0 <= results["cer_val_texts"] and 0.0 <= results[f"cer_{zh_corpus.name}_val_speakers"]
    assert CTCRecognizer.from_pretrained(tmp_path / "rec").config.lang == "zh"
    with pytest.raises(ValueError, match="--langs zh"):  # an English corpus has no Mandarin clips
        train_main(["--lang", "zh", "--data-dir", str(corpus), "--out", str(tmp_path / "x"), "--steps", "1"])


def test_eval_gives_mandarin_items_a_pinyin_cer(zh_corpus, pipeline_dir, recognizer_dir, zh_recognizer_dir, tmp_path,
                                                capsys):
    args = ["--pipeline", str(pipeline_dir), "--data-dir", str(zh_corpus), "--recognizer", str(recognizer_dir),
            "--split", "val", "--max-samples", "2", "--systems", "ground_truth", "--no-sim-a", "--no-wer"]
    result = eval_main(args + ["--recognizer-zh", str(zh_recognizer_dir)])
    assert "| CER | CER zh |" in capsys.readouterr().out
    assert result["config"]["recognizer_zh"] == str(zh_recognizer_dir)
    for split, systems in result["results"].items():
        metrics = systems["ground_truth"]
        assert metrics["cer"] is None and 0.0 <= metrics["cer_zh"] <= 10.0
        # one item per split: the wrong-sentence chance level pairs it with itself
        assert result["wrong_sentence_cer_zh"][split] == pytest.approx(metrics["cer_zh"])
    for item in result["items"]:
        assert item["lang"] == "zh" and isinstance(item["ground_truth"]["transcript"], str)

    without = eval_main(args + ["--recognizer-zh", str(tmp_path / "missing")])
    assert "no Mandarin recognizer" in capsys.readouterr().out
    assert all(systems["ground_truth"]["cer_zh"] is None for systems in without["results"].values())
    assert without["wrong_sentence_cer_zh"] == {}
    with pytest.raises(SystemExit, match="--lang zh"):  # an English recognizer cannot judge Mandarin
        eval_main(args + ["--recognizer-zh", str(recognizer_dir)])
