"""Source of notebooks/04_train_a_tiny_omnitalker.ipynb (built by scripts/build_notebooks.py)."""
# ruff: noqa: E402  (notebook cells import where each section needs it)
# %% [markdown]
# # 04 · Train a tiny OmniTalker
#
# The whole recipe at toy scale, on a CPU: about 2 minutes on 2 cores.
#
# 1. make a mini **synthetic talking corpus** (espeak-ng speech + phoneme-driven facial motion, in WebDataset shards);
# 2. train the audio-visual DiT with the project's trainer (`omnitalker.training`: Accelerate, the flow-matching loss
#    of notebook 01 with 70–100 % infilling spans, logit-normal times, condition dropout for guidance, EMA weights)
#    on espeak-ng **phonemes laid out by their durations** (`text_layout: durations`, Voicebox-style: every frame is
#    told which sound it carries, so a small model does not have to discover the alignment), and the small
#    **duration predictor** that gives the frames per phoneme at inference;
# 3. watch the loss fall and the in-filled mel of a held-out speaker get closer to the real one (at this scale its
#    head-pose distance barely moves);
# 4. save the result as a diffusers pipeline and load it back.
#
# The same code trains the bundled demo checkpoint (`configs/train/demo*.yaml`) and scales to many GPUs with
# `accelerate launch -m omnitalker.train`. A model this small trained this briefly does **not** talk intelligibly:
# the point is to see every piece work and the numbers move. `OMNITALKER_QUICK=1` shrinks it further (tests).

# %%
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

QUICK = os.environ.get("OMNITALKER_QUICK", "0") == "1"
CORPUS_HOURS = 0.01 if QUICK else 0.08  # 36 s or ~5 min of speech
STAGES = 3 if QUICK else 4  # train, look at a sample, train more, ...
STEPS_PER_STAGE = 15 if QUICK else 150
WORKDIR = Path("outputs/tiny_omnitalker")
torch.set_num_threads(1)  # a model this small trains about as fast on one thread, and other work on the CPU
                          # does not make the two threads wait for each other
# Work from the repository whether Jupyter was started at its root or in notebooks/: find the folder that holds
# pyproject.toml and run there (what the notebook writes goes to the git-ignored outputs/).
ROOT = next((folder for folder in (Path.cwd(), *Path.cwd().parents)
             if (folder / "pyproject.toml").is_file() and (folder / "omnitalker").is_dir()), None)
if ROOT is not None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))  # `import omnitalker` even without `pip install -e .`
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bars without ipywidgets
plt.rcParams.update({"figure.dpi": 110, "figure.constrained_layout.use": True})  # sharp figures, nothing overlapping

# %% [markdown]
# ## 1. A mini corpus
#
# `build_corpus` draws speakers (an espeak voice, pitch, rate, plus a visual style: head-sway amplitude and rhythm,
# nods, blinks, gaze habits, articulation), speaks Faker sentences, computes the 100-bin log-mel (93.75 frames/s) and
# the 58-dim visual codes (30 fps), and writes shards with an `index.json`. One speaker is held out
# (`val_speakers`): we use it to see whether the model picks up a voice and style it never trained on.
#
# The command-line equivalent: `python -m omnitalker.data.synthetic --out DIR --hours 0.5 --speakers 24`.

# %%
from omnitalker.data.synthetic import build_corpus

corpus_dir = WORKDIR / "corpus"
start = time.perf_counter()
index = build_corpus(corpus_dir, hours=CORPUS_HOURS, speakers=4, seed=0, max_seconds=4.0, progress=False)
print(f"corpus built in {time.perf_counter() - start:.1f} s")
for split, info in index["splits"].items():
    print(f"{split:>13}: {info['seconds']:6.1f} s of speech in {len(info['shards'])} shard(s)")

# %% [markdown]
# ## 2. The training configuration
#
# Every key is documented in `omnitalker/training/config.py`; YAML files in `configs/train/` hold the same
# sections. We use the `tiny` transformer (0.16 M parameters: 2 fusion blocks with MM-attention, 1 single-modality
# block per branch) and a constant learning rate so training can be continued stage by stage.

# %%
from omnitalker.training import config_from_dict, train

run_dir = WORKDIR / "run"
raw_config = {
    "model": {"config": "tiny", "overrides": {"text_layout": "durations", "text_num_embeds": 862}},
    "data": {"dir": str(corpus_dir), "val_split": "val_speakers", "frames_per_batch": 1500,
             "max_samples_per_batch": 8},
    "optimizer": {"lr": 2e-3, "warmup_steps": 10, "schedule": "constant"},
    "loss": {"timestep_distribution": "logit_normal", "span_fraction": [0.7, 1.0]},
    "ema": {"decay": 0.95},
    "training": {"output_dir": str(run_dir), "cpu": True, "mixed_precision": "no", "save_every": STEPS_PER_STAGE,
                 "keep_last": 1},
    "logging": {"log_every": 5, "tensorboard": False, "validate_every": STEPS_PER_STAGE, "val_max_samples": 8},
}

# %% [markdown]
# ## 3. Train, look, train more
#
# After each stage we take a held-out clip, give the model its first 30 % (audio **and** motion) as the prompt and
# let it in-fill the rest with `omnitalker.flow.sample` — exactly what the pipeline does with a reference. We measure
# the mel L1 error and the pose P-FID of the in-filled span against the real continuation. `train(config,
# resume="latest")` continues from the last checkpoint, with the same data order and noise it would have had.

# %%
import contextlib
import io

from omnitalker.eval.fid import p_fid
from omnitalker.flow import GuidanceConfig, OmniTalkerFlowMatchScheduler, sample
from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.training import ShardDataset

phonemes = PhonemeTokenizer.default()  # 862 espeak-ng phoneme tokens (+ pauses, word boundaries, Mandarin tones)
held_out = ShardDataset(corpus_dir, "val_speakers", phonemes)[0]
tokens = phonemes.decode(held_out.text_ids).split(" ")
print("held-out clip as the model sees its text (token: frames):",
      " ".join(f"{t}:{int(d)}" for t, d in zip(tokens, held_out.text_durations.tolist(), strict=True)))
prompt_frames = int(0.3 * len(held_out.mel))
prompt_mask = torch.zeros(1, len(held_out.mel), dtype=torch.bool)
prompt_mask[:, :prompt_frames] = True
scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=8)


def infill_held_out(transformer):
    """In-fill the held-out clip after its 30 % prompt; returns (mel n 100, codes n 58)."""
    out = sample(transformer.eval(), scheduler, text_ids=held_out.text_ids[None], audio_cond=held_out.mel[None],
                 visual_cond=held_out.codes[None], cond_mask=prompt_mask, guidance=GuidanceConfig(),
                 generator=torch.Generator().manual_seed(0), text_durations=held_out.text_durations[None])
    return out.audio[0], out.visual[0]


snapshots = []
start = time.perf_counter()
for stage in range(1, STAGES + 1):
    config = config_from_dict({**raw_config, "training": {**raw_config["training"], "max_steps": stage * STEPS_PER_STAGE}})
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer's console log; logs/train.csv keeps every row
        train(config, resume="latest")
    transformer = OmniTalkerTransformer.from_pretrained(run_dir / "transformer")  # the EMA weights
    mel, codes = infill_held_out(transformer)
    target = slice(prompt_frames, None)
    snapshots.append({
        "step": stage * STEPS_PER_STAGE,
        "mel": mel,
        "mel_l1": float((mel[target] - held_out.mel[target]).abs().mean()),
        "p_fid": p_fid(held_out.codes[target].numpy(), codes[target].numpy()),
    })
    print(f"step {snapshots[-1]['step']:>4}: held-out mel L1 {snapshots[-1]['mel_l1']:.3f}, "
          f"P-FID {snapshots[-1]['p_fid']:.4f}  ({time.perf_counter() - start:.0f} s so far)")

# %% [markdown]
# The trainer logs a CSV row every few steps (`logs/train.csv`: total loss, one L1 term per stream, learning rate,
# gradient norm, throughput) and validation losses on the held-out speaker (`logs/val.csv`); it also prints each row,
# which the loop above kept out of the notebook.

# %%
log = pd.read_csv(run_dir / "logs" / "train.csv")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for column in ("loss", "mel", "pose", "exp", "eye"):
    if column in log:
        axes[0].plot(log["step"], log[column], label=column, linewidth=2 if column == "loss" else 1)
axes[0].set_title("training loss (masked L1 per stream)")
axes[0].set_xlabel("optimizer step")
axes[0].set_ylabel("L1 to the velocity target")
axes[0].legend(fontsize="small")
steps = [s["step"] for s in snapshots]
axes[1].plot(steps, [s["mel_l1"] for s in snapshots], marker="o", label="mel L1 (log-mel units)")
axes[1].plot(steps, [s["p_fid"] for s in snapshots], marker="s", label="pose P-FID")
axes[1].set_title("held-out speaker: in-filled span vs the real one")
axes[1].set_xlabel("optimizer step")
axes[1].set_ylabel("distance (lower is better)")
axes[1].legend(fontsize="small")
plt.show()
print(f"training loss: first logged {log['loss'].iloc[0]:.3f}, last {log['loss'].iloc[-1]:.3f}")
val_path = run_dir / "logs" / "val.csv"
if val_path.exists():
    print(pd.read_csv(val_path).round(4).to_string(index=False))

# %% [markdown]
# The in-filled mel after each stage, next to the real clip (the prompt is the part left of the dashed line).

# %%
mel_fps = 24000 / 256
fig, axes = plt.subplots(len(snapshots) + 1, 1, figsize=(9, 1.8 * (len(snapshots) + 1)), sharex=True)
panels = [(f"step {s['step']}", s["mel"]) for s in snapshots] + [("real clip", held_out.mel)]
for axis, (title, mel) in zip(axes, panels, strict=False):
    axis.imshow(mel.T.numpy(), origin="lower", aspect="auto", cmap="magma", extent=(0, len(mel) / mel_fps, 0, 100))
    axis.axvline(prompt_frames / mel_fps, color="white", linestyle="--")
    axis.set_title(title, fontsize="small")
    axis.set_ylabel("mel bin")
axes[-1].set_xlabel("time (s)")
fig.suptitle("held-out clip: prompt | in-filled continuation")
plt.show()

# %% [markdown]
# ## 4. The duration predictor
#
# At inference nobody hands us the frames per phoneme of new text: a small convolutional regressor predicts them from
# the phonemes and the reference's pace (`omnitalker.models.duration_predictor`). Same trainer, its own config kind;
# it reports its error on held-out clips next to a constant-rate baseline (every phoneme gets the mean length).

# %%
duration_config = config_from_dict({
    "model": {"kind": "duration_predictor", "overrides": {"dim": 64, "num_layers": 2}},
    "data": {"dir": str(corpus_dir), "val_split": "val_speakers"},
    "optimizer": {"lr": 3e-3},
    "training": {"output_dir": str(WORKDIR / "durations"), "max_steps": 100 if QUICK else 600},
    "logging": {"log_every": 1000, "validate_every": 100 if QUICK else 600},
})
with contextlib.redirect_stdout(io.StringIO()):  # its log line repeats the table below
    duration_result = train(duration_config)
print(pd.DataFrame({name: duration_result["history"][-1][name] for name in ("model", "constant_rate")}).T)

# %% [markdown]
# ## 5. Save and reload as a pipeline
#
# The trained transformer and duration predictor plus a scheduler, the phoneme tokenizer, a vocoder and a renderer
# make an `OmniTalkerPipeline`;
# `save_pretrained` writes the diffusers layout (`model_index.json` + one folder per component) that
# `from_pretrained` — and notebooks 02/03 — load. Griffin-Lim stands in for a Vocos vocoder here: it has no weights.

# %%
from omnitalker import OmniTalkerPipeline
from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.models.duration_predictor import DurationPredictor
from omnitalker.models.vocoder import GriffinLimVocoder
from omnitalker.render.warp import WarpRenderer

pipe = OmniTalkerPipeline(
    transformer=transformer,
    scheduler=OmniTalkerFlowMatchScheduler(num_inference_steps=16),
    tokenizer=PhonemeTokenizer.default(),
    vocoder=GriffinLimVocoder(),
    renderer=WarpRenderer(output_size=256),
    duration_predictor=DurationPredictor.from_pretrained(WORKDIR / "durations" / "duration_predictor"),
)
pipe.set_progress_bar_config(disable=True)
save_dir = WORKDIR / "tiny-omnitalker"
pipe.save_pretrained(save_dir)
print(sorted(str(p.relative_to(save_dir)) for p in save_dir.rglob("*") if p.is_file()))

from diffusers.utils import logging as diffusers_logging

diffusers_logging.disable_progress_bar()  # no "Loading pipeline components" bar in the output
reloaded = OmniTalkerPipeline.from_pretrained(save_dir)
mel_before, codes_before = infill_held_out(pipe.transformer)
mel_after, codes_after = infill_held_out(reloaded.transformer)
print("reloaded pipeline reproduces the sample exactly:",
      bool(torch.equal(mel_before, mel_after) and torch.equal(codes_before, codes_after)))

# %% [markdown]
# `OmniTalkerPipeline.from_pretrained("outputs/tiny_omnitalker/tiny-omnitalker")` now works like the demo checkpoint
# in notebook 02. To train for real: a bigger corpus (`--hours`, more speakers), the `demo` or `base` config, and a
# GPU — see `configs/train/demo.yaml` and the commands at the top of `omnitalker/train.py`.
