"""The "durations" text layout end to end: phoneme tokenizer, frame layouts, transformer, data, duration
predictor, pipeline save/load, and the errors a user or a corpus can trigger."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnitalker.frontend.phonemes import (
    PAUSE,
    WORD_BOUNDARY,
    PhonemeSequence,
    PhonemeTokenizer,
    events_to_sequence,
    frame_durations,
)
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.pipeline.text_layout import TextLayout, prompt_layout, prompt_window, speech_span
from tests.pipeline_fixtures import tiny_transformer


@pytest.fixture(scope="module")
def tokenizer():
    return PhonemeTokenizer.default()


# ------------------------------------------------------------------------------------------- tokenizer


@pytest.mark.parametrize("text", ["Hello world, I have 23 apples.", "今天天气不错。", "Hello 你好, OK?"])
def test_phonemize_round_trip(tokenizer, text):
    seq = tokenizer.phonemize(text)
    ids = tokenizer.convert_tokens_to_ids(seq.tokens)  # every token is in the vocabulary
    assert tokenizer.decode(ids).split(" ") == seq.tokens
    assert seq.tokens[0] == PAUSE and seq.tokens[-1] == PAUSE  # edge silences
    assert all(a <= b for a, b in zip(seq.starts, seq.starts[1:], strict=False))
    assert all(s <= e for s, e in zip(seq.starts, seq.ends, strict=True))
    assert WORD_BOUNDARY in seq.tokens


def test_mandarin_vowels_carry_pinyin_tones(tokenizer):
    seq = tokenizer.phonemize("你好")  # ni3 hao3 (tone sandhi: ni2 hao3)
    toned = [token for token in seq.tokens if token[-1].isdigit()]
    assert [token[-1] for token in toned] == ["2", "3"]
    english = tokenizer.phonemize("Hello")
    assert not any(token[-1].isdigit() for token in english.tokens if token != PAUSE)


def test_numbers_are_spoken(tokenizer):
    assert len(tokenizer.phonemize("I have 23.").tokens) > len(tokenizer.phonemize("I have.").tokens) + 4


def test_unpronounceable_and_unknown_are_named(tokenizer):
    with pytest.raises(ValueError, match="nothing to pronounce"):
        tokenizer.phonemize("?! ...")
    with pytest.raises(ValueError, match="empty"):
        tokenizer.phonemize("   ")
    with pytest.raises(ValueError, match=r"sounds this model was not trained on \(espeak-ng phonemes \['zz9'\]\)"):
        tokenizer.convert_tokens_to_ids(["h", "zz9"])
    with pytest.raises(ValueError, match="starts with"):
        PhonemeTokenizer(["a", "b"])


def test_tokenizer_save_load(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = PhonemeTokenizer.from_pretrained(tmp_path)
    assert loaded.vocab == tokenizer.vocab


def test_packaged_vocab_is_current():
    """scripts/make_phoneme_vocab.py --check: the vocabulary matches what espeak reports today."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "scripts/make_phoneme_vocab.py", "--check"], cwd=root,
                            capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------- layouts


def test_frame_durations_sum_exactly():
    seq = events_to_sequence([{"phoneme": "h", "start": 0.05, "end": 0.1}, {"phoneme": "'oU", "start": 0.1,
                              "end": 0.31}, {"phoneme": "_:", "start": 0.31, "end": 0.4}], total_seconds=0.5)
    assert seq.tokens == [PAUSE, "h", "'oU", PAUSE]  # leading silence, pause event merged with the tail
    for frames in (47, 10, 1, 200):
        durations = frame_durations(seq, frames)
        assert durations.sum() == frames and (durations >= 0).all()
    assert frame_durations(seq, 47).tolist() == [5, 4, 20, 18]  # boundaries 0.05/0.1/0.31 s x 93.75 rounded


def test_prompt_layout_maps_speech_onto_the_sound():
    seq = PhonemeSequence([PAUSE, "h", "'oU", PAUSE], [0.0, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4])
    layout = prompt_layout(seq, [0, 5, 6, 0], num_frames=100, span=(20, 80))
    assert layout.num_frames == 100 and layout.frames == [20, 30, 30, 20]
    mel = torch.full((50, 100), -11.0)
    mel[10:40] = 0.0
    assert speech_span(mel) == (10, 40)


def test_layout_slicing_keeps_frames():
    layout = TextLayout([1, 2, 3, 4], [3, 0, 4, 5])
    assert layout.slice_frames(2, 9) == TextLayout([1, 2, 3, 4], [1, 0, 4, 2])
    assert (layout.slice_frames(0, 5) + layout.slice_frames(5, 12)).num_frames == 12


def test_prompt_window_tail_keeps_the_last_words_within_the_trained_share():
    # pause 10 | w o r d (4 x 10) | boundary | w o r d (4 x 10) | pause 10: 100 frames; ids 0 = pause, 1 = boundary
    layout = TextLayout([0, 5, 6, 7, 8, 1, 5, 6, 7, 8, 0], [10, 10, 10, 10, 10, 0, 10, 10, 10, 10, 10])
    starts = {0, 1}
    assert prompt_window(layout, 1000, starts, min_frames=20).start == 0  # a long target: the whole prompt fits
    # budget 0.3 / 0.7 x 140 = 60 frames: earliest cut 40; the word boundary at frame 50 is the first word start
    assert prompt_window(layout, 140, starts, min_frames=20).start == 50
    # a budget of 45 frames (target 105) has no word start inside [55, 80]: the first token start, 60
    assert prompt_window(layout, 105, starts, min_frames=20).start == 60
    # frames already taken by a previous chunk's tail come out of the budget, but min_frames are always kept
    assert prompt_window(layout, 140, starts, reserved_frames=30, min_frames=20).start == 70
    assert prompt_window(layout, 10, starts, min_frames=35).start == 65  # budget = min_frames, no token start in it: 65
    kept = layout.slice_frames(50, layout.num_frames)
    assert kept.ids[0] == 1 and kept.num_frames == 50


def test_prompt_window_keeps_whole_words_at_either_end():
    layout = TextLayout([0, 5, 6, 7, 8, 1, 5, 6, 7, 8, 0], [10, 10, 10, 10, 10, 0, 10, 10, 10, 10, 10])
    starts = {0, 1}
    assert prompt_window(layout, 1000, starts, keep="head", min_frames=20) == slice(0, 100)  # fits whole
    # budget 60 frames: the head ends at the last word start inside [20, 60], the boundary at 50
    assert prompt_window(layout, 140, starts, keep="head", min_frames=20) == slice(0, 50)
    # budget 45: no word start inside [20, 45] but the pause at 0: the last token start, 40
    assert prompt_window(layout, 105, starts, keep="head", min_frames=20) == slice(0, 40)
    assert prompt_window(layout, 140, starts, keep="tail", min_frames=20) == slice(50, 100)
    with pytest.raises(ValueError, match="keep"):
        prompt_window(layout, 140, starts, keep="middle")


def test_pipeline_gives_a_durations_model_only_the_prompt_tail(tmp_path, monkeypatch):
    from omnitalker import OmniTalkerPipeline
    from omnitalker.pipeline import denoise
    from omnitalker.pipeline.text_layout import MAX_PROMPT_SHARE
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video

    pipe = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"))
    video = make_reference_video(tmp_path / "ref.mp4", seconds=4.0, size=128)
    seen = []
    original = denoise.Sampler.denoise

    def spy(self, segments, *args, **kwargs):
        seen.extend(segments)
        return original(self, segments, *args, **kwargs)

    monkeypatch.setattr(denoise.Sampler, "denoise", spy)
    pipe("Hi there.", reference_video=video, reference_text=REFERENCE_TEXT, num_inference_steps=2,
         output_type="latent", generator=torch.Generator().manual_seed(0))
    reference = pipe.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)
    (segment,) = seen
    prompt = len(segment.prompt_mel)
    assert prompt < reference.num_frames  # cut ...
    assert prompt <= max(round(1.0 * 93.75), MAX_PROMPT_SHARE / (1 - MAX_PROMPT_SHARE) * segment.num_frames) + 1
    assert torch.equal(segment.prompt_mel, reference.mel[-prompt:])  # ... to its last frames
    assert segment.layout.num_frames == prompt + segment.num_frames


# ------------------------------------------------------------------------------------------- transformer


def test_durations_layout_puts_token_k_on_its_frames():
    model = tiny_transformer(text_layout="durations")
    ids = torch.tensor([[3, 1, 7, 9]])
    durations = torch.tensor([[4, 0, 6, 2]])
    features = model.embed_text(ids, 12, text_durations=durations)[0]  # 12 dt
    expected = [0] * 4 + [2] * 6 + [3] * 2  # token index per frame (the 0-frame token gets none)
    for frame, token in enumerate(expected):
        same = [f for f, t in enumerate(expected) if t == token]
        assert torch.equal(features[frame], features[same[0]])
    assert not torch.equal(features[3], features[4]) and not torch.equal(features[9], features[10])
    dropped = model.embed_text(ids, 12, drop_text=True, text_durations=durations)
    assert dropped.abs().max() == 0  # no alignment leaks into the unconditional pass


def test_durations_padded_batch_equals_items_alone():
    model = tiny_transformer(text_layout="durations")
    x = torch.randn(2, 30, 100)
    v = torch.randn(2, 30, 58)
    ids = torch.tensor([[3, 5, -1], [2, 4, 6]])
    durations = torch.tensor([[12, 8, 0], [10, 10, 10]])
    mask = torch.arange(30)[None] < torch.tensor([20, 30])[:, None]
    batch = model(audio=x, audio_cond=x, visual=v, visual_cond=v, text_ids=ids, timestep=0.4,
                  text_durations=durations, attention_mask=mask)
    alone = model(audio=x[:1, :20], audio_cond=x[:1, :20], visual=v[:1, :20], visual_cond=v[:1, :20],
                  text_ids=ids[:1, :2], timestep=0.4, text_durations=durations[:1, :2])
    torch.testing.assert_close(batch.audio[0, :20], alone.audio[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(batch.visual[0, :20], alone.visual[0], atol=1e-5, rtol=1e-4)


def test_durations_errors_name_the_problem():
    model = OmniTalkerTransformer.from_named_config("tiny", text_layout="durations")
    x = torch.randn(1, 10, 100)
    ids = torch.tensor([[3, 5]])
    with pytest.raises(ValueError, match="sum to each sample's valid frame count"):
        model(audio=x, text_ids=ids, timestep=0.5, text_durations=torch.tensor([[4, 5]]))
    with pytest.raises(ValueError, match="pass `text_durations`"):
        model(audio=x, text_ids=ids, timestep=0.5)
    filler = OmniTalkerTransformer.from_named_config("tiny")
    with pytest.raises(ValueError, match="only used by the 'durations'"):
        filler(audio=x, text_ids=ids, timestep=0.5, text_durations=torch.tensor([[4, 6]]))
    with pytest.raises(ValueError, match="contradicts"):
        OmniTalkerTransformer.from_named_config("tiny", text_layout="durations", text_average_upsampling=True)


def test_legacy_average_flag_still_means_average():
    model = OmniTalkerTransformer.from_named_config("tiny", text_average_upsampling=True)
    assert model.text_layout == "average"
    assert OmniTalkerTransformer.from_named_config("tiny").text_layout == "filler"


# ------------------------------------------------------------------------------------------- data + predictor


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from omnitalker.data.synthetic import build_corpus

    folder = tmp_path_factory.mktemp("corpus")
    build_corpus(folder, hours=0.05, speakers=4, langs=("en", "zh"), seed=1, progress=False, workers=2,
                 text_source="mixed")
    return folder


def test_corpus_durations_sum_to_frames(corpus, tokenizer):
    from omnitalker.training.data import ShardDataset, collate

    for split in ("train", "val_speakers"):
        dataset = ShardDataset(corpus, split, tokenizer)
        for index in range(len(dataset)):
            sample = dataset[index]
            assert int(sample.text_durations.sum()) == len(sample.mel)
            assert len(sample.text_durations) == len(sample.text_ids)
    batch = collate([dataset[0], dataset[1]])
    assert torch.equal(batch.text_durations.sum(1), batch.lengths)


def test_shard_without_timings_is_refused(corpus, tokenizer):
    from omnitalker.training.data import ShardDataset

    dataset = ShardDataset(corpus, "train", tokenizer)
    with pytest.raises(ValueError, match="no phoneme timings"):
        dataset.phoneme_layout({"text": "hello", "lang": "en", "phonemes": []}, 100, "clip x")


def test_cross_prompted_clips_are_laid_out_as_the_pipeline_lays_a_reference(corpus, tokenizer):
    from omnitalker.training.cross_prompt import CrossPromptClips, cross_prompted
    from omnitalker.training.data import ShardDataset, ShardDatasets, collate

    plain = ShardDataset(corpus, "train", tokenizer)
    clips = CrossPromptClips(plain, prob=1.0, seed=0, tokenizer=tokenizer)
    speakers = [plain.speaker_of(i) for i in range(len(plain))]
    assert speakers[0] == plain[0].speaker
    prompted = [i for i, partner in enumerate(clips.partners) if partner is not None]
    assert len(prompted) == len(plain)  # every speaker of this corpus has several clips
    for index in prompted[:12]:
        partner, sample, clip, source = clips.partners[index], clips[index], plain[index], plain[clips.partners[index]]
        assert partner != index and speakers[partner] == speakers[index]
        cut = sample.prompt_frames
        assert 0 < cut and len(sample.mel) == cut + len(clip.mel) <= clips.lengths[index]
        assert torch.equal(sample.mel[cut:], clip.mel) and torch.equal(sample.codes[cut:], clip.codes)
        window = prompt_window(TextLayout(source.text_ids.tolist(), source.text_durations.tolist()),
                               len(clip.mel), tokenizer.word_start_ids())  # the pipeline's cut of a reference
        assert torch.equal(sample.mel[:cut], source.mel[window])
        assert torch.allclose(sample.codes[cut - 1], clip.codes[0])  # no jump at the seam
        assert torch.allclose(sample.codes[1:cut] - sample.codes[: cut - 1], source.codes[window][1:] - source.codes[window][:-1],
                              atol=1e-5)  # the prompt's own motion
        assert int(sample.text_durations.sum()) == len(sample.mel)
        assert torch.equal(sample.text_ids[-len(clip.text_ids):], clip.text_ids)
    batch = collate([clips[prompted[0]], plain[1]])
    assert batch.prompt_frames.tolist() == [clips[prompted[0]].prompt_frames, 0]

    anonymous = ShardDataset(corpus, "train", tokenizer)
    anonymous.speaker_of = lambda index: ""  # e.g. clips whose metadata names no speaker: never paired
    assert all(partner is None for partner in CrossPromptClips(anonymous, 1.0, 0, tokenizer).partners)
    off = CrossPromptClips(plain, prob=0.0, seed=0, tokenizer=tokenizer)
    assert off.lengths == plain.lengths and off[0].prompt_frames == 0
    again = cross_prompted(ShardDatasets([plain, plain]), prob=0.5, seed=0, tokenizer=tokenizer)
    first, second = again.datasets
    assert 0 < sum(p is not None for p in first.partners) < len(plain)
    assert first.partners != second.partners  # each corpus draws its own partners
    assert cross_prompted(plain, 0.5, 0, tokenizer).partners == CrossPromptClips(plain, 0.5, (0, 0), tokenizer).partners
    with pytest.raises(ValueError, match="cross_prompt_prob must be in"):
        CrossPromptClips(plain, prob=1.5, seed=0, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="phoneme tokenizer"):
        CrossPromptClips(plain, prob=0.5, seed=0, tokenizer=None)


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps process-wide singletons; reset them so the in-process runs start and leave clean."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def test_training_with_prompts_from_other_clips(corpus, tmp_path, fresh_accelerate_state):
    from pathlib import Path

    from omnitalker.training import load_config, train
    from omnitalker.training.cross_prompt import CrossPromptClips
    from omnitalker.training.trainer import Trainer

    tiny = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny.yaml"
    overrides = [f"data.dir={corpus}", f"training.output_dir={tmp_path / 'out'}", "training.max_steps=2",
                 "data.val_split=val_speakers", "model.overrides={text_layout: durations, text_num_embeds: 862}",
                 "data.frames_per_batch=3000", "data.cross_prompt_prob=1.0"]
    trainer = Trainer(load_config(tiny, overrides))
    assert isinstance(trainer.train_set, CrossPromptClips)
    batch = next(iter(trainer.loader))
    assert bool((batch.prompt_frames > 0).all())
    result = train(load_config(tiny, overrides))
    assert result["step"] == 2 and (tmp_path / "out" / "transformer" / "config.json").is_file()
    with pytest.raises(ValueError, match="data.cross_prompt_prob in .* must be in"):
        load_config(tiny, [*overrides, "data.cross_prompt_prob=2"])
    with pytest.raises(ValueError, match="durations"):  # the character tokenizer has no word timings to cut at
        Trainer(load_config(tiny, [*overrides[:4], "data.cross_prompt_prob=0.5"]))


def test_duration_predictor_beats_constant_rate(corpus, tmp_path):
    from omnitalker.training import load_config, train

    config_path = tmp_path / "duration.yaml"
    config_path.write_text(
        f"model:\n  kind: duration_predictor\n  overrides: {{dim: 32, num_layers: 2}}\n"
        f"data:\n  dir: {corpus}\n  val_split: val_speakers\noptimizer:\n  lr: 3.0e-3\n"
        f"training:\n  output_dir: {tmp_path / 'out'}\n  max_steps: 300\nlogging:\n  log_every: 1000\n"
        "  validate_every: 300\n")
    result = train(load_config(config_path))
    final = result["history"][-1]
    assert final["model"]["token_mae_frames"] < 0.7 * final["constant_rate"]["token_mae_frames"]
    from omnitalker.models.duration_predictor import DurationPredictor

    loaded = DurationPredictor.from_pretrained(tmp_path / "out" / "duration_predictor")
    ids = torch.tensor([[0, 5, 6, 1, 7, 0]])
    frames = loaded.predict_frames(ids, torch.tensor([8.0]))
    assert frames[0, 3] == 0  # the word boundary gets no frames
    slow = loaded.predict_frames(ids, torch.tensor([8.0]), speed=0.5)
    assert int(slow.sum()) == pytest.approx(2 * int(frames.sum()), abs=2)
    with pytest.raises(ValueError, match="speed"):
        loaded.predict_frames(ids, torch.tensor([8.0]), speed=0)


# ------------------------------------------------------------------------------------------- pipeline


def test_pipeline_with_durations_saves_loads_and_generates(tmp_path):
    from omnitalker import OmniTalkerPipeline
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video

    pipe = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"))
    video = make_reference_video(tmp_path / "ref.mp4", seconds=1.5, size=128)
    kwargs = dict(reference_video=video, reference_text=REFERENCE_TEXT, num_inference_steps=2,
                  output_type="latent")
    out = pipe("Nice to meet you. 你好。", generator=torch.Generator().manual_seed(0), **kwargs)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    assert type(loaded.tokenizer).__name__ == "PhonemeTokenizer"
    again = loaded("Nice to meet you. 你好。", generator=torch.Generator().manual_seed(0), **kwargs)
    np.testing.assert_allclose(out.mel[0], again.mel[0], rtol=1e-5, atol=1e-5)  # loaded weights: test_pipeline.py
    fixed = loaded("Nice to meet you.", duration=1.0, **kwargs)
    assert fixed.mel[0].shape[1] == round(1.0 * 93.75)
    long = loaded("One sentence here. " * 6, max_chunk_seconds=2.5, **kwargs)  # chunked with exact tails
    assert long.mel[0].shape[1] > 2.5 * 93.75
    lipsync = loaded(reference_video=video, audio=video, reference_text=REFERENCE_TEXT, num_inference_steps=2,
                     output_type="latent")
    assert lipsync.visual_codes[0].shape[1] == 58
    no_predictor = OmniTalkerPipeline(**{**get_dummy_components(text_layout="durations"), "duration_predictor": None})
    with pytest.raises(ValueError, match="no duration_predictor"):
        no_predictor("Hello.", **kwargs)


@pytest.mark.parametrize("layout", ["filler", "average"])
def test_character_layout_pipelines_still_save_load_and_generate(tmp_path, layout):
    """Pipelines saved before the phoneme layout (character tokenizer, no duration predictor) keep working."""
    import json

    from omnitalker import OmniTalkerPipeline
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video

    components = get_dummy_components(text_layout=layout)
    assert "duration_predictor" not in components
    OmniTalkerPipeline(**components).save_pretrained(tmp_path / "pipe")
    config_path = tmp_path / "pipe" / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    if layout == "average":  # written as an old checkpoint would have it: the legacy flag, no text_layout
        config.pop("text_layout")
        config["text_average_upsampling"] = True
        config_path.write_text(json.dumps(config))
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    index.pop("duration_predictor", None)
    (tmp_path / "pipe" / "model_index.json").write_text(json.dumps(index))
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    assert loaded.transformer.text_layout == layout and not loaded.uses_durations
    video = make_reference_video(tmp_path / "ref.mp4", seconds=1.5, size=128)
    out = loaded("Hello there.", reference_video=video, reference_text=REFERENCE_TEXT, num_inference_steps=2,
                 output_type="latent")
    assert out.mel[0].shape[0] == 100 and out.mel[0].shape[1] > 0
