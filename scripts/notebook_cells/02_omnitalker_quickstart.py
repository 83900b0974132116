"""Source of notebooks/02_omnitalker_quickstart.ipynb (built by scripts/build_notebooks.py)."""
# ruff: noqa: E402  (notebook cells import where each section needs it)
# %% [markdown]
# # 02 · OmniTalker quickstart
#
# Text + a short reference clip of a person talking → new speech in that voice **and** a talking-head video with
# that person's head motion, expressions and gaze habits, from one flow-matching model.
#
# This notebook loads the pipeline, makes a reference clip offline, generates, plays the result inline, plots what
# the model produced (mel-spectrogram, visual codes, head yaw) and saves an mp4. It runs in about a minute on 2 CPU
# cores.
#
# **Weights.** By default the bundled demo checkpoint in `weights/omnitalker-demo` (diffusers layout: one folder per
# component and a `model_index.json`) is loaded; set the `OMNITALKER_PIPELINE` environment variable to another folder,
# or replace the path by a Hugging Face Hub id. If the folder holds a **randomly initialised** pipeline (the test
# suite uses one when no trained weights are available), everything below runs the same way, but the audio is noise
# and the motion is random: only a trained checkpoint speaks.

# %%
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Audio, Video, display

# Work from the repository whether Jupyter was started at its root or in notebooks/: find the folder that holds
# pyproject.toml and run there (what the notebook writes goes to the git-ignored outputs/).
ROOT = next((folder for folder in (Path.cwd(), *Path.cwd().parents)
             if (folder / "pyproject.toml").is_file() and (folder / "omnitalker").is_dir()), None)
if ROOT is not None:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))  # `import omnitalker` even without `pip install -e .`
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notebook bars without ipywidgets
plt.rcParams.update({"figure.dpi": 110, "figure.constrained_layout.use": True})  # sharp figures, nothing overlapping

from diffusers.utils import logging as diffusers_logging

from omnitalker import OmniTalkerPipeline

diffusers_logging.disable_progress_bar()  # no "Loading pipeline components" bar in the outputs

QUICK = os.environ.get("OMNITALKER_QUICK", "0") == "1"
NUM_STEPS = 4 if QUICK else 16  # the paper samples with 16 ODE steps
OUTPUT_DIR = Path("outputs/notebooks")
OUTPUT_DIR.mkdir(parents=True, exist_ok=True)

PIPELINE = os.environ.get("OMNITALKER_PIPELINE", "weights/omnitalker-demo")
# PIPELINE = "your-name/omnitalker"   # a Hub repo id in the same layout works the same way
pipe = OmniTalkerPipeline.from_pretrained(PIPELINE)
pipe.set_progress_bar_config(disable=True)  # no sampling progress bar in the outputs
print(pipe.components.keys())
print(f"transformer: {pipe.transformer.num_parameters() / 1e6:.2f} M parameters; "
      f"scheduler: {pipe.scheduler.config.solver}, sway {pipe.scheduler.config.sway_sampling_coef}")

# %% [markdown]
# ## A reference clip, made offline
#
# The model needs a 1–10 s clip of someone talking, plus its transcript. So that this notebook runs anywhere without
# downloads, we make one: scikit-image's public-domain astronaut photo, a voice from the `espeak-ng` speech
# synthesizer, and facial motion (mouth shapes from the phonemes espeak spoke, head sway, blinks, gaze) from
# `omnitalker.data.motion` in a randomly drawn *speaker style*. The motion codes are drawn onto the photo with the
# pipeline's own renderer. With your own material, just point `reference_video` at an mp4.

# %%
from skimage import data

from omnitalker.data.motion import random_speaker, synthesize_codes
from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.frontend.espeak import synthesize
from omnitalker.frontend.face import CODE_FPS, FaceAnalyzer, FaceIdentity, decode_codes, encode_codes
from omnitalker.io.audio import resample
from omnitalker.io.export import export_to_video
from omnitalker.render.warp import WarpRenderer

photo = data.astronaut()  # 512 x 512 RGB
analyzer = FaceAnalyzer()
photo_track = analyzer.analyze_image(photo)
identity = FaceIdentity.from_track(photo_track)
photo_codes = encode_codes(photo_track.landmarks, identity)[0]  # 58: the photo's own pose, expression, gaze
clip_renderer = WarpRenderer(output_size=256)  # a small warp crop keeps the clip quick to make
render_source = clip_renderer.prepare(photo, photo_track.landmarks[0])


def make_reference_clip(path, text, style, seed=0):
    """Speak `text` with the style's espeak voice, animate the photo in the style's manner, write an mp4.

    Returns the 30 fps visual codes that drove the clip (T, 58)."""
    speech = synthesize(text, voice=style.voice, rate=style.rate, pitch=style.pitch, pitch_range=style.pitch_range)
    motion = synthesize_codes(speech.phonemes, speech.duration, style, np.random.default_rng(seed))  # T 58
    codes = photo_codes[None] + motion  # motion is relative to the photo's neutral face
    frames = clip_renderer.render(render_source, decode_codes(codes, identity))  # T H W 3
    wave = resample(speech.audio.astype(np.float64), speech.sample_rate, SAMPLE_RATE).astype(np.float32)
    export_to_video(frames, path, fps=int(CODE_FPS), audio=wave, sample_rate=SAMPLE_RATE)
    return codes


style = random_speaker(np.random.default_rng(3), "ann")
REFERENCE_TEXT = "Hello there, my name is Ann. I like to talk about the stars."
start = time.perf_counter()
reference_codes = make_reference_clip(OUTPUT_DIR / "reference.mp4", REFERENCE_TEXT, style)
print(f"reference: {len(reference_codes) / CODE_FPS:.1f} s, voice {style.voice}, made in {time.perf_counter() - start:.1f} s")
display(Video(str(OUTPUT_DIR / "reference.mp4"), embed=True, width=256))

# %% [markdown]
# ## Generate
#
# One call. The pipeline analyses the reference (audio → mel, video → per-frame visual codes), concatenates the
# reference transcript with the new text, and solves the flow ODE for both streams at once, in-filling
# `[reference | new]`. Then the vocoder (Griffin-Lim in the bundled demo, Vocos in a converted pipeline) turns the
# mel into a waveform and the renderer warps the reference face with the generated codes. Every output carries a
# visible "AI-generated" label and invisible watermarks (`watermark=False` turns them off).
#
# The real-time factor (RTF: seconds of compute per second of speech) printed below is that of a first call: it
# includes analysing the reference clip (the face tracker on every frame) and one-off costs of a fresh kernel
# (loading MediaPipe's face model, the first run of every torch kernel). So we also time the two parts a running
# app pays separately: `prepare_reference` once per reference, then a call on the prepared reference, warm.
# `BENCHMARKS.md` times warm calls stage by stage on an otherwise idle 2-core CPU; on a shared machine every
# figure here is slower.

# %%
TEXT = "Nice to meet you. Today we will learn how flow matching makes talking heads."
start = time.perf_counter()
out = pipe(
    TEXT,
    reference_video=str(OUTPUT_DIR / "reference.mp4"),
    reference_text=REFERENCE_TEXT,
    num_inference_steps=NUM_STEPS,
    generator=torch.Generator().manual_seed(0),
)
first_call = time.perf_counter() - start
duration = len(out.audio[0]) / out.sample_rate
print(f"generated {duration:.2f} s of audio and {len(out.frames[0])} frames at {out.fps:g} fps")
print("mel", out.mel[0].shape, "| visual codes", out.visual_codes[0].shape, f"at {out.visual_codes_fps:g} fps")

start = time.perf_counter()
reference = pipe.prepare_reference(reference_video=str(OUTPUT_DIR / "reference.mp4"), reference_text=REFERENCE_TEXT)
analysis = time.perf_counter() - start
start = time.perf_counter()
pipe(TEXT, reference=reference, num_inference_steps=NUM_STEPS, generator=torch.Generator().manual_seed(0))
warm_call = time.perf_counter() - start
print(f"first call, reference clip included: {first_call:.1f} s (RTF {first_call / duration:.2f})")
print(f"analysing the reference once: {analysis:.1f} s; then a warm call on it: {warm_call:.1f} s "
      f"(RTF {warm_call / duration:.2f})")

# %% [markdown]
# ## Listen and watch
#
# `export_to_video` writes H.264 video with AAC audio; the notebook embeds the file (a few hundred kB), so the
# player works on the web too.

# %%
video_path = export_to_video(out.frames[0], OUTPUT_DIR / "quickstart.mp4", fps=int(out.fps), audio=out.audio[0],
                             sample_rate=out.sample_rate)
print(f"saved {video_path} ({Path(video_path).stat().st_size / 1e3:.0f} kB)")
display(Audio(out.audio[0], rate=out.sample_rate))
display(Video(video_path, embed=True, width=320))

# %% [markdown]
# ## What a speech recogniser hears
#
# The pipeline bundles Whisper tiny.en (offline, `omnitalker.frontend.asr`) to transcribe references given without a
# transcript. Here it is the judge: a recogniser no one here trained, reading the generated speech. The word error
# rate (WER) counts the words it got wrong (0 = all right; mumbling scores about 1). The bundled demo is a small
# model trained on a CPU with synthetic voices, through a Griffin-Lim vocoder: expect some words right, not all
# (its model card has the numbers).

# %%
from omnitalker.eval.wer import word_error_rate
from omnitalker.frontend.asr import default_recognizer

try:
    heard = default_recognizer().transcribe(out.audio[0], out.sample_rate, confident_only=False)
except ValueError as error:  # no words at all (e.g. a pipeline with random weights)
    heard = ""
    print(f"(nothing recognised: {error})")
print(f"said:  {TEXT}\nheard: {heard}\nWER   {word_error_rate(TEXT, heard):.2f}")

# %% [markdown]
# ## What the model generated
#
# **Mel-spectrogram**: 100 log-mel bins at 93.75 frames/s (24 kHz audio, hop 256) — the audio stream of the DiT.

# %%
mel = out.mel[0]  # 100 n
fig, axis = plt.subplots(figsize=(10, 3))
image = axis.imshow(mel, origin="lower", aspect="auto", cmap="magma",
                    extent=(0, mel.shape[1] / (out.sample_rate / 256), 0, mel.shape[0]))
fig.colorbar(image, ax=axis, label="log magnitude")
axis.set_title("generated log-mel spectrogram")
axis.set_xlabel("time (s)")
axis.set_ylabel("mel bin")
plt.show()

# %% [markdown]
# **Visual codes**: 58 numbers per frame — head pose (yaw, pitch, roll in radians, translation, scale), 48 expression
# offsets (x, y, z of 16 facial landmarks) and the two irises' positions (see `omnitalker/frontend/face/codes.py`).
# Each row is z-scored so that small and large dimensions are visible together; the expression rows are labelled by
# landmark, three rows (x, y, z) each.

# %%
from omnitalker.frontend.face.codes import EXP_SLICE, EXPRESSION_POINTS, EYE_SLICE, POSE_NAMES
from omnitalker.frontend.face.plots import plot_gaze_traces, plot_pose_traces

codes = out.visual_codes[0]  # T 58
zscored = (codes - codes.mean(0)) / np.where(codes.std(0) > 0, codes.std(0), 1.0)
landmarks = [name.replace("_", " ") for name, _ in EXPRESSION_POINTS]  # 16 landmarks, x y z each
ticks = list(range(len(POSE_NAMES))) + [EXP_SLICE.start + 3 * i + 1 for i in range(len(landmarks))] + [
    EYE_SLICE.start + 0.5, EYE_SLICE.start + 2.5]
tick_labels = list(POSE_NAMES) + landmarks + ["left iris x, y", "right iris x, y"]
fig, axis = plt.subplots(figsize=(10, 7.5))
image = axis.imshow(zscored.T, aspect="auto", interpolation="nearest", cmap="coolwarm", vmin=-3, vmax=3,
                    extent=(0.0, len(codes) / out.visual_codes_fps, codes.shape[1] - 0.5, -0.5))
for boundary in (EXP_SLICE.start - 0.5, EYE_SLICE.start - 0.5):
    axis.axhline(boundary, color="black", linewidth=1)
axis.set_yticks(ticks, tick_labels, fontsize=8)
axis.set_xlabel("time (s)")
axis.set_ylabel("code dimension: head pose | expression (x, y, z per landmark) | irises")
axis.set_title("generated visual codes over time")
fig.colorbar(image, ax=axis, label="z-score per dimension")
plt.show()

# %% [markdown]
# **Head pose**: yaw, pitch and roll in degrees, reference (as the pipeline measured it from the clip) beside the
# generated motion. A trained model continues the reference's rhythm and amplitude rather than copying it.

# %%
mel_fps = out.sample_rate / 256  # `reference`: prepared above, as the pipeline measured the clip
fig = plot_pose_traces(reference.codes.numpy(), out.visual_codes[0], fps=mel_fps, generated_fps=out.visual_codes_fps)
display(fig)
fig = plot_gaze_traces([reference.codes.numpy()[:: round(mel_fps / CODE_FPS)], out.visual_codes[0]],
                       fps=CODE_FPS, labels=["reference", "generated"])
display(fig)

# %% [markdown]
# ## More knobs
#
# * `prepare_reference(...)` once, then `pipe(text, reference=reference)` for many texts (skips the face analysis);
# * `guidance_text`, `guidance_audio`, `guidance_visual`: classifier-free guidance strength per condition
#   (notebook 03 sweeps them); `guidance_anneal="cosine"` lowers them towards the end of sampling;
# * `speed` (pace relative to the reference) or `duration` (seconds);
# * `audio="speech.wav"` lip-syncs the reference face to a recording instead of speaking text;
# * `output_type="latent"` returns only the mel and codes (no vocoder/renderer).
#
# Below: the reference prepared above, two texts in one batched call, mel and codes only.

# %%
batch = pipe(["Short one.", "And a slightly longer sentence."], reference=reference, output_type="latent",
             num_inference_steps=NUM_STEPS, generator=[torch.Generator().manual_seed(i) for i in range(2)])
for text, mel, codes in zip(["Short one.", "And a slightly longer sentence."], batch.mel, batch.visual_codes, strict=False):
    print(f"{text!r:>36}: mel {mel.shape} ({mel.shape[1] / mel_fps:.2f} s), codes {codes.shape}")
analyzer.close()
