"""Training recipe: shard reader, frame-budget batching, config errors, exact resume, atomic checkpoints, 2-process run.

    python -m pytest tests/test_training.py -q -x
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from omnitalker.data.synthetic import Sample, ShardWriter
from omnitalker.frontend.face.codes import CODE_FPS, MEL_FPS
from omnitalker.train import main as train_main
from omnitalker.training import (
    DynamicBatchSampler,
    ShardDataset,
    collate,
    find_latest_checkpoint,
    load_config,
    train,
)

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "configs" / "train" / "tiny.yaml"


def write_corpus(out: Path, num_train: int = 12, num_val: int = 3, seed: int = 0, code_delta: int = 0) -> Path:
    """A small corpus in the real shard format from random arrays (``code_delta`` misaligns the codes)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    index = {"splits": {}}
    for split, count in (("train", num_train), ("val_texts", num_val)):
        writer = ShardWriter(out, split, with_audio=False, samples_per_shard=8)
        for item in range(count):
            frames = int(rng.integers(40, 120))
            code_frames = int(round(frames / MEL_FPS * CODE_FPS)) + code_delta
            writer.write(Sample(
                key=f"{split}_{item:04d}", text=f"hello world number {item}", lang="en", speaker=f"spk{item % 3}",
                audio=np.zeros(frames * 256, np.float32),
                mel=rng.standard_normal((frames, 100)).astype(np.float16),
                codes=(0.1 * rng.standard_normal((code_frames, 58))).astype(np.float32), phonemes=[],
            ))
        writer.close()
        index["splits"][split] = {"seconds": 0.0, "shards": writer.shards}
    (out / "index.json").write_text(json.dumps(index))
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps process-wide singletons; reset them so each in-process run starts clean."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


# ----------------------------------------------------------------------------------------------- data


def test_dataset_reads_aligned_samples(corpus):
    dataset = ShardDataset(corpus, "train")
    assert len(dataset) == 12 and dataset.lengths == [len(dataset[i].mel) for i in range(len(dataset))]
    item = dataset[3]
    assert item.mel.shape == (dataset.lengths[3], 100) and item.codes.shape == (dataset.lengths[3], 58)
    assert item.text_ids.dtype == torch.long and int(item.text_ids.min()) >= 0
    batch = collate([dataset[0], dataset[1]])
    longest = max(dataset.lengths[:2])
    assert batch.mel.shape == (2, longest, 100) and batch.codes.shape == (2, longest, 58)
    short = int(np.argmin(dataset.lengths[:2]))
    assert torch.all(batch.mel[short, dataset.lengths[short]:] == 0)
    assert torch.all(batch.codes[short, dataset.lengths[short]:] == 0)
    assert batch.lengths.tolist() == dataset.lengths[:2]
    shorter_text = int(np.argmin([len(dataset[0].text_ids), len(dataset[1].text_ids)]))
    assert batch.text_ids[shorter_text, -1] == -1 or len(dataset[0].text_ids) == len(dataset[1].text_ids)


def test_sampler_budget_determinism_and_sharding():
    rng = np.random.default_rng(1)
    lengths = rng.integers(50, 900, size=200).tolist() + [5000]  # the last clip exceeds the budget
    with pytest.warns(UserWarning, match="longer than frames_per_batch"):
        single = DynamicBatchSampler(lengths, frames_per_batch=2000, max_samples=8, seed=3)
    batches = list(single)
    for batch in batches:
        assert len(batch) <= 8 and max(lengths[i] for i in batch) * len(batch) <= 2000
    assert sorted(i for batch in batches for i in batch) == list(range(200))  # every clip once, except the long one
    assert list(DynamicBatchSampler(lengths, 2000, 8, seed=3)) == batches  # same seed, same epoch
    single.set_epoch(1)
    assert list(single) != batches  # reshuffled per epoch
    single.set_epoch(1, position=4)
    assert list(single) == single.epoch_batches(1)[4:]  # resumes mid-epoch
    ranks = [DynamicBatchSampler(lengths, 2000, 8, seed=3, num_replicas=3, rank=r) for r in range(3)]
    per_rank = [list(sampler) for sampler in ranks]
    assert len({len(b) for b in per_rank}) == 1  # same number of steps everywhere
    seen = [i for batches_r in per_rank for batch in batches_r for i in batch]
    assert len(seen) == len(set(seen))  # no clip on two ranks


def test_sampler_curriculum_short_clips_first():
    rng = np.random.default_rng(2)
    lengths = rng.integers(50, 900, size=120).tolist()
    sampler = DynamicBatchSampler(lengths, 2000, 8, seed=0, curriculum_max_frames=300, curriculum_epochs=2)
    for epoch, limited in [(0, True), (1, True), (2, False)]:
        used = sorted(i for batch in sampler.epoch_batches(epoch) for i in batch)
        expected = [i for i, length in enumerate(lengths) if length <= 300] if limited else list(range(120))
        assert used == expected
    with pytest.raises(ValueError, match="no clip is that short"):
        DynamicBatchSampler(lengths, 2000, 8, curriculum_max_frames=10, curriculum_epochs=1)


# ----------------------------------------------------------------------------------------------- bad input


def test_truncated_and_corrupt_shards_name_the_shard(corpus, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in corpus.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    shard = broken / "train-00001.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    with pytest.raises(ValueError, match="train-00001.tar.*(corrupt or truncated|lacks)"):
        ShardDataset(broken, "train")
    shard.write_bytes(b"this is not a tar file" * 100)
    with pytest.raises(ValueError, match="train-00001.tar"):
        ShardDataset(broken, "train")
    shard.unlink()
    with pytest.raises(ValueError, match="train-00001.tar is listed in index.json but missing"):
        ShardDataset(broken, "train")
    with pytest.raises(ValueError, match="split 'nope' not in"):
        ShardDataset(corpus, "nope")
    with pytest.raises(ValueError, match="no index.json"):
        ShardDataset(tmp_path / "nowhere", "train")


def test_mismatched_stream_lengths_are_reported(tmp_path):
    dataset = ShardDataset(write_corpus(tmp_path / "misaligned", num_train=2, num_val=1, code_delta=5), "train")
    with pytest.raises(ValueError, match=r"clip train_0000 .*mel has \d+ frames but codes cover \d+"):
        dataset[0]


def test_config_errors(corpus, tmp_path):
    with pytest.raises(ValueError, match="config file .*missing.yaml does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="data.dir .* has no index.json"):
        load_config(TINY_CONFIG, ["data.dir=/nonexistent/corpus"])
    with pytest.raises(ValueError, match="unknown key optimizer.learning_rate"):
        load_config(TINY_CONFIG, [f"data.dir={corpus}", "optimizer.learning_rate=1"])
    with pytest.raises(ValueError, match="unknown section 'optimiser'"):
        load_config(TINY_CONFIG, [f"data.dir={corpus}", "optimiser.lr=1"])
    with pytest.raises(ValueError, match="training.max_steps .* must be an integer"):
        load_config(TINY_CONFIG, [f"data.dir={corpus}", "training.max_steps=many"])
    with pytest.raises(ValueError, match="model.config .* neither a named config"):
        load_config(TINY_CONFIG, [f"data.dir={corpus}", "model.config=/no/such/config.json"])
    config = load_config(TINY_CONFIG, [f"data.dir={corpus}", "optimizer.lr=2e-4", "training.mixed_precision=no"])
    assert config.optimizer.lr == 2e-4 and config.training.mixed_precision == "no"
    assert train_main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_lr_schedules(corpus):
    from omnitalker.training.trainer import lr_lambda

    base = [f"data.dir={corpus}", "optimizer.warmup_steps=10", "training.max_steps=110"]
    linear = lr_lambda(load_config(TINY_CONFIG, [*base, "optimizer.schedule=linear"]))
    assert linear(0) == pytest.approx(0.1) and linear(10) == 1.0 and linear(60) == 0.5 and linear(110) == 0.0
    constant = lr_lambda(load_config(TINY_CONFIG, [*base, "optimizer.schedule=constant"]))
    assert constant(9) == 1.0 and constant(109) == 1.0 and constant(500) == 1.0
    # warmup-stable-decay: flat until max_steps - decay_steps, then linear to 0
    wsd = lr_lambda(load_config(TINY_CONFIG, [*base, "optimizer.schedule=constant", "optimizer.decay_steps=40"]))
    assert wsd(69) == 1.0 and wsd(70) == 1.0 and wsd(90) == 0.5 and wsd(110) == 0.0
    with pytest.raises(ValueError, match="decay_steps .* only used with schedule: constant"):
        load_config(TINY_CONFIG, [*base, "optimizer.schedule=linear", "optimizer.decay_steps=40"])
    with pytest.raises(ValueError, match="decay_steps .* longer than the steps after warmup"):
        load_config(TINY_CONFIG, [*base, "optimizer.schedule=constant", "optimizer.decay_steps=101"])


# ----------------------------------------------------------------------------------------------- training


def tiny_config(corpus: Path, output_dir: Path, *extra: str):
    return load_config(TINY_CONFIG, [
        f"data.dir={corpus}", f"training.output_dir={output_dir}", "training.max_steps=4",
        "training.save_every=2", "training.keep_last=5", "training.grad_accumulation=2",
        "model.overrides={dropout: 0.1}", "logging.validate_every=2", *extra,
    ])


def test_resume_continues_bit_for_bit(corpus, tmp_path):
    straight = tmp_path / "straight"
    state = train(tiny_config(corpus, straight, "logging.sample_every=3"))  # sampling must not disturb the RNGs
    assert state["step"] == 4 and state["epoch"] >= 1  # crossed an epoch boundary
    resumed = tmp_path / "resumed"
    train(tiny_config(corpus, resumed), resume=str(straight / "checkpoints" / "checkpoint-2"))
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(straight / "checkpoints" / "checkpoint-4" / name)
        b = load_file(resumed / "checkpoints" / "checkpoint-4" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), name
    start = load_file(straight / "checkpoints" / "checkpoint-2" / "model.safetensors")
    assert not all(torch.equal(start[key], a[key]) for key in start)  # training did change the weights
    straight_rows = (straight / "logs" / "train.csv").read_text().splitlines()
    resumed_rows = (resumed / "logs" / "train.csv").read_text().splitlines()
    columns = straight_rows[0].split(",")
    keep = [i for i, column in enumerate(columns) if column != "frames_per_s"]

    def strip(row):
        return [row.split(",")[i] for i in keep]
    assert [strip(r) for r in resumed_rows[1:]] == [strip(r) for r in straight_rows[3:]]  # steps 3, 4
    assert all(np.isfinite(float(r.split(",")[columns.index("loss")])) for r in straight_rows[1:])
    # validation uses fixed draws: the same weights give the same numbers in both runs
    assert (straight / "logs" / "val.csv").read_text().splitlines()[-1] == \
        (resumed / "logs" / "val.csv").read_text().splitlines()[-1]
    # the pipeline-ready EMA transformer loads and equals the EMA weights
    from omnitalker.models.transformer import OmniTalkerTransformer

    ema_model = OmniTalkerTransformer.from_pretrained(straight / "transformer")
    ema = load_file(straight / "checkpoints" / "checkpoint-4" / "ema.safetensors")
    assert all(torch.equal(param, ema[name]) for name, param in ema_model.named_parameters())
    sampled = straight / "samples" / "step-0000003"
    mel, codes = np.load(sampled / "mel.npy"), np.load(sampled / "codes.npy")
    assert mel.shape[1] == 100 and codes.shape == (mel.shape[0], 58) and np.isfinite(mel).all()
    # "latest" picks the newest complete checkpoint
    assert find_latest_checkpoint(straight).name == "checkpoint-4"


def test_extra_corpora_join_training_and_a_resume_keeps_its_statistics(corpus, tmp_path):
    from omnitalker.models.transformer import OmniTalkerTransformer
    from omnitalker.training.data import training_clips

    extra = write_corpus(tmp_path / "more_speakers", num_train=5, num_val=2, seed=1)
    with pytest.raises(ValueError, match="data.extra_train_dirs .*nowhere has no index.json"):
        load_config(TINY_CONFIG, [f"data.dir={corpus}", f"data.extra_train_dirs=[{tmp_path / 'nowhere'}]"])
    first = tmp_path / "first"
    train(tiny_config(corpus, first))
    config = tiny_config(corpus, tmp_path / "more", f"data.extra_train_dirs=[{extra}]", "training.max_steps=6")
    clips = training_clips(config.data)
    assert len(clips) == 12 + 5 and clips.lengths[12:] == ShardDataset(extra, "train").lengths
    assert {clips[i].key for i in range(len(clips))} >= {f"train_{i:04d}" for i in range(12)}
    # a fresh model would take its statistics from both corpora; the resumed one keeps the checkpoint's
    state = train(config, resume=str(first / "checkpoints" / "checkpoint-4"))
    assert state["step"] == 6
    before = OmniTalkerTransformer.from_pretrained(first / "transformer").config
    after = OmniTalkerTransformer.from_pretrained(tmp_path / "more" / "transformer").config
    assert after.visual_mean == before.visual_mean and after.visual_std == before.visual_std


def test_crash_during_save_leaves_the_previous_checkpoint(corpus, tmp_path, monkeypatch):
    import omnitalker.training.trainer as trainer_module

    calls = {"n": 0}
    real = trainer_module.save_ema_model

    def crash_on_second_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash while writing checkpoint-2")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_ema_model", crash_on_second_save)
    out = tmp_path / "crash"
    config = tiny_config(corpus, out, "training.save_every=1", "training.grad_accumulation=1",
                         "data.val_split=null")
    with pytest.raises(KeyboardInterrupt):
        train(config)
    names = sorted(path.name for path in (out / "checkpoints").iterdir())
    assert "checkpoint-1" in names and "checkpoint-2" not in names  # the partial one is hidden
    assert find_latest_checkpoint(out).name == "checkpoint-1"
    monkeypatch.setattr(trainer_module, "save_ema_model", real)
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    state = train(config, resume="latest")  # picks up at step 1 and cleans the partial folder's place
    assert state["step"] == 4
    assert find_latest_checkpoint(out).name == "checkpoint-4"


@pytest.mark.slow  # two fresh interpreters import torch + diffusers (~20 s of CPU each)
def test_two_process_cpu_run(corpus, tmp_path):
    """torchrun with 2 CPU processes (gloo DDP via Accelerator(cpu=True)): both ranks train, one checkpoint."""
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "omnitalker.train", "--config", str(TINY_CONFIG), "--data-dir", str(corpus),
        "--output-dir", str(out), "--max-steps", "2", "--set", "training.save_every=2",
        "--set", "data.val_split=null",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(path.name for path in (out / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-2"]  # written once (by the main process), no partial leftovers
    checkpoint = out / "checkpoints" / "checkpoint-2"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["num_processes"] == 2 and state["step"] == 2
    for rank in (0, 1):  # every rank saved its RNG and noise-generator state
        assert (checkpoint / f"random_states_{rank}.pkl").is_file()
        assert (checkpoint / f"generator_{rank}.pt").is_file()
    rows = (out / "logs" / "train.csv").read_text().splitlines()
    columns = rows[0].split(",")
    assert len(rows) == 3 and all(np.isfinite(float(r.split(",")[columns.index("loss")])) for r in rows[1:])
    assert (out / "transformer" / "config.json").is_file()


def test_auto_precision_uses_bf16_on_a_cpu_only_where_it_is_native(monkeypatch, capsys):
    from omnitalker.training import trainer

    monkeypatch.setattr(trainer.torch.cuda, "is_available", lambda: False)
    for native, expected in ((True, "bf16"), (False, "no")):
        monkeypatch.setattr(trainer, "cpu_has_fast_bf16", lambda native=native: native)
        assert trainer.resolve_mixed_precision("auto", cpu=True) == expected
    assert trainer.resolve_mixed_precision("no", cpu=True) == "no"
    assert trainer.resolve_mixed_precision("bf16", cpu=True) == "bf16"  # an explicit choice is kept ...
    assert "emulated" in capsys.readouterr().out  # ... with a warning that names the fix
