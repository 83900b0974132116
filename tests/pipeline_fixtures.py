"""Test helpers for the pipeline: tiny random components and synthetic reference media, all offline.

    from tests.pipeline_fixtures import get_dummy_components, make_reference_video, make_voice
    pipe = OmniTalkerPipeline(**get_dummy_components())
    video = make_reference_video(tmp_path / "ref.mp4", seconds=1.5)

The reference "person" is scikit-image's public-domain astronaut photo, cropped to the face and
animated with a small head sway (rotation + translation), with a speech track from espeak-ng (the library
in the espeakng-loader wheel, ``omnitalker.frontend.espeak``), padded with a synthetic voiced signal (harmonics
at a moving pitch under a syllable envelope) when the clip is longer than the sentence.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from omnitalker.frontend.audio import SAMPLE_RATE  # the package's rates, not copies
from omnitalker.io.export import DEFAULT_FPS as VIDEO_FPS

REFERENCE_TEXT = "The quick brown fox jumps."
FACE_CROP = (10, 120, 250, 360)  # (top, left, bottom, right) of the astronaut's head in the 512 px photo
HEAD_SWAY_DEGREES = 3.0
HEAD_SWAY_HZ = 0.8
SYLLABLE_HZ = 4.0  # syllables per second of the synthetic voice
VOICE_PITCH_HZ = 140.0


def astronaut_face(size: int = 192) -> np.ndarray:
    """The astronaut's head, (size, size, 3) uint8 RGB."""
    import cv2
    from skimage import data

    top, left, bottom, right = FACE_CROP
    crop = data.astronaut()[top:bottom, left:right]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def animate_face(face: np.ndarray, num_frames: int, fps: float = VIDEO_FPS) -> np.ndarray:
    """(T, H, W, 3) uint8: the face swaying gently (small rotation and shift), as a talking head does."""
    import cv2

    height, width = face.shape[:2]
    frames = []
    for index in range(num_frames):
        phase = 2 * math.pi * HEAD_SWAY_HZ * index / fps
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), HEAD_SWAY_DEGREES * math.sin(phase), 1.0)
        matrix[:, 2] += (0.01 * width * math.cos(phase), 0.01 * height * math.sin(phase))
        frames.append(cv2.warpAffine(face, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def synthetic_voice(seconds: float, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """A speech-like mono signal: voiced harmonics with a wandering pitch under a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    pitch = VOICE_PITCH_HZ * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(np.pi * SYLLABLE_HZ * t), 0, None) ** 2
    wave = voiced * envelope + 0.01 * rng.standard_normal(t.shape)
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def make_voice(seconds: float = 1.5, text: str = REFERENCE_TEXT) -> np.ndarray:
    """(nw,) float32 at 24 kHz: espeak-ng saying `text` (cut to `seconds`, padded with a synthetic voice)."""
    from omnitalker.frontend.espeak import synthesize
    from omnitalker.io.audio import resample

    utterance = synthesize(text, voice="en-us")
    wave = resample(utterance.audio.astype(np.float64), utterance.sample_rate, SAMPLE_RATE).astype(np.float32)
    target = round(seconds * SAMPLE_RATE)
    if len(wave) < target:
        wave = np.concatenate([wave, synthetic_voice((target - len(wave)) / SAMPLE_RATE)])
    return wave[:target]


def make_reference_video(
    path: str | Path, seconds: float = 1.5, size: int = 192, with_audio: bool = True, text: str = REFERENCE_TEXT
) -> Path:
    """Write an mp4 of the talking astronaut (H.264 + AAC unless `with_audio` is False)."""
    from omnitalker.io.export import export_to_video

    frames = animate_face(astronaut_face(size), round(seconds * VIDEO_FPS))
    audio = make_voice(seconds, text) if with_audio else None
    export_to_video(frames, str(path), fps=VIDEO_FPS, audio=audio, sample_rate=SAMPLE_RATE)
    return Path(path)


def get_dummy_components(seed: int = 0, render_size: int = 64, text_layout: str = "filler") -> dict:
    """Tiny random components for OmniTalkerPipeline(**components): fast, deterministic, offline.
    ``text_layout="durations"`` gives the phoneme tokenizer and a tiny duration predictor too."""
    from omnitalker.flow.scheduler import OmniTalkerFlowMatchScheduler
    from omnitalker.frontend.phonemes import WORD_BOUNDARY, PhonemeTokenizer
    from omnitalker.frontend.text import OmniTalkerTokenizer
    from omnitalker.models.duration_predictor import DurationPredictor
    from omnitalker.models.transformer import OmniTalkerTransformer
    from omnitalker.models.vocoder import GriffinLimVocoder
    from omnitalker.render.warp import WarpRenderer

    torch.manual_seed(seed)
    components = {
        "scheduler": OmniTalkerFlowMatchScheduler(num_inference_steps=2),
        "vocoder": GriffinLimVocoder(n_iter=2, mel_inversion_iters=2).eval(),
        "renderer": WarpRenderer(output_size=render_size),
    }
    if text_layout == "durations":
        tokenizer = PhonemeTokenizer.default()
        transformer = OmniTalkerTransformer.from_named_config("tiny", text_layout="durations",
                                                              text_num_embeds=tokenizer.vocab_size).eval()
        components["tokenizer"] = tokenizer
        components["duration_predictor"] = DurationPredictor(
            num_embeds=tokenizer.vocab_size, dim=16, num_layers=1,
            zero_duration_ids=[tokenizer.token_to_id[WORD_BOUNDARY]]).eval()
    else:
        transformer = OmniTalkerTransformer.from_named_config("tiny", text_layout=text_layout).eval()
        components["tokenizer"] = OmniTalkerTokenizer.default()
    perturbed(transformer, seed, scale=0.02)  # small: long pipeline sequences stay well-conditioned
    components["transformer"] = transformer
    return components


def perturbed(model: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """``model`` (in eval mode) with ``scale`` x N(0, 1) added to every parameter: adaLN-Zero makes a fresh
    model output exactly 0, which would hide every path and make CFG, masking and pipeline tests vacuous."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def tiny_transformer(seed: int = 0, scale: float = 0.1, **overrides):
    """The "tiny" OmniTalkerTransformer config (``overrides`` on top), every weight perturbed (``perturbed``)."""
    from omnitalker.models.transformer import OmniTalkerTransformer

    torch.manual_seed(seed)
    return perturbed(OmniTalkerTransformer.from_named_config("tiny", **overrides), seed, scale)


def seeded(seed: int = 0) -> torch.Generator:
    """A CPU generator at ``seed``: reproducible pipeline calls."""
    return torch.Generator("cpu").manual_seed(seed)


def dummy_pipeline(**kwargs):
    """``OmniTalkerPipeline(**get_dummy_components(**kwargs))`` with its progress bar off."""
    from omnitalker.pipeline import OmniTalkerPipeline

    pipeline = OmniTalkerPipeline(**get_dummy_components(**kwargs))
    pipeline.set_progress_bar_config(disable=True)
    return pipeline
