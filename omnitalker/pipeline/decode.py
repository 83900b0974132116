"""Steps 5-7 of ``OmniTalkerPipeline.__call__``: mel -> waveform (``vocode``), codes -> frames (``render``, its source
prepared once per reference and size by ``RenderSources``), watermarks (``watermark``), and the output in the asked
format (``format_output``). Functions of what they are given: no step reads the pipeline."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.utils import BaseOutput, logging

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.frontend.face.codes import CODE_FPS, retime, video_frame_count
from omnitalker.io.export import DEFAULT_FPS
from omnitalker.io.image import fit_within
from omnitalker.pipeline.reference import (
    OmniTalkerReference,
)

logger = logging.get_logger(__name__)

FRAME_CHUNK_PIXELS = 50 * 512 * 512  # a streamed output (stream_frames=True) renders this many pixels at a time
# ... and at most this many frames (1 s of video), so the renderer works on the next second while the encoder
# takes this one (FrameStream's prefetch) even for short clips
FRAME_CHUNK_MAX_FRAMES = DEFAULT_FPS  # frames


@dataclass
class OmniTalkerPipelineOutput(BaseOutput):
    """Output of ``OmniTalkerPipeline``; every list has one entry per generated item (batch order).

    audio: (samples,) float32 waveforms at ``sample_rate`` (None for output_type="latent").
    frames: (T, H, W, 3) uint8 RGB videos at ``fps`` (None for output_type="latent").
    mel: (100, n) generated log-mel at 93.75 frames/s (the vocoder's input; the prompt not included).
    visual_codes: (T30, 58) generated visual codes at ``visual_codes_fps`` (30) frames/s.
    reference_text: the reference transcript the generation used (typed, or recognised by the pipeline's ASR).
    mode: the mode that ran. With mode="audio", frames and visual_codes are None.
    Arrays are numpy for output_type "np" and "latent", torch tensors for "pt".
    """

    audio: list | None
    sample_rate: int
    frames: list | None
    fps: float
    mel: list
    visual_codes: list
    visual_codes_fps: float = CODE_FPS
    reference_text: str | None = None
    mode: str | None = None  # "joint", "audio" or "cascade" (omnitalker.pipeline.modes)


def vocode(vocoder, mel: torch.Tensor, gain: float, device) -> torch.Tensor:
    """mel (g, 100) -> wave (samples,) float32 on CPU, back at the reference's loudness."""
    vocoder_dtype = next(vocoder.parameters(), mel).dtype  # Griffin-Lim has no parameters
    wave = vocoder.decode(mel.T[None].to(device, vocoder_dtype))[0]  # nw
    return (wave.float().cpu() / gain).clamp(-1.0, 1.0)


def render(renderer, source, codes: torch.Tensor, num_samples: int, fps: int, stream_frames: bool = False,
           progress: Callable | None = None):
    """codes (n, 58) at the mel rate -> (T, H, W, 3) uint8 frames at `fps` covering num_samples of audio, drawn by
    ``renderer.render_codes`` from its prepared `source` (``RenderSources``). With `stream_frames` a ``FrameStream``
    that renders ``FRAME_CHUNK_PIXELS`` (at most ``FRAME_CHUNK_MAX_FRAMES``) at a time as it is read, the next
    chunk while the encoder takes this one (memory flat in the length and in the frame size), else an array."""
    from omnitalker.io.frames import FrameStream

    codes_video = retime(codes, MEL_FRAME_RATE, fps, video_frame_count(num_samples, fps)).numpy()  # T 58

    def draw(start: int, stop: int) -> np.ndarray:
        return np.asarray(renderer.render_codes(source, codes_video[start:stop]))

    if stream_frames:
        width, height = source.size
        return FrameStream(len(codes_video), height, width, draw,
                           chunk_frames=max(1, min(FRAME_CHUNK_MAX_FRAMES, FRAME_CHUNK_PIXELS // (height * width))),
                           progress=progress)
    return draw(0, len(codes_video))


class RenderSources:
    """``renderer.prepare_source(reference, max_side)``, cached per reference and output size (the last reference
    only: one reference at a time is the common case, and memory stays flat); the caller's reference is not
    touched. Keys: (id(reference), size, id(renderer)) -> (weakref to the reference, source)."""

    def __init__(self):
        self.sources: dict = {}

    def get(self, renderer, reference: OmniTalkerReference, max_side: int | None):
        height, width = reference.image.shape[:2]
        key = (id(reference), fit_within(width, height, max_side), id(renderer))
        owner, cached = self.sources.get(key, (None, None))
        if owner is not None and owner() is reference:  # the same object, not a new one at a reused address
            return cached
        source = renderer.prepare_source(reference, max_side)
        self.sources = {k: v for k, v in self.sources.items() if v[0]() is reference}
        self.sources[key] = (weakref.ref(reference), source)
        return source


def frame_progress(progress_bar_config: dict) -> Callable | None:
    """A tqdm bar class for rendering a streamed video (the pipeline's progress-bar settings), or None."""
    from functools import partial

    from tqdm.auto import tqdm

    config = {key: value for key, value in progress_bar_config.items() if key != "desc"}
    return None if config.get("disable") else partial(tqdm, **config)


def format_output(mel_items, code_items, audio_out, frames_out, output_type: str, visual: bool, fps: float,
                  reference_text: str | None, mode: str) -> OmniTalkerPipelineOutput:
    """Step 7 of ``__call__``: codes at their own rate (30 fps) over the output's length, mels (100, g),
    numpy or torch as asked (`visual` False: speech only, no frames or codes)."""
    codes_out = None
    if visual:
        codes_out = []
        for index, codes in enumerate(code_items):
            seconds = (len(audio_out[index]) / SAMPLE_RATE) if audio_out else len(codes) / MEL_FRAME_RATE
            codes_out.append(retime(codes, MEL_FRAME_RATE, CODE_FPS, max(1, round(seconds * CODE_FPS))).numpy())
    else:
        frames_out = None
    mel_out = [mel.T.contiguous().numpy() for mel in mel_items]  # 100 g
    if output_type == "pt":
        audio_out = [torch.from_numpy(np.ascontiguousarray(wave)) for wave in audio_out]
        if frames_out is not None:
            frames_out = [torch.from_numpy(np.ascontiguousarray(frames)) for frames in frames_out]
        mel_out = [torch.from_numpy(mel) for mel in mel_out]
        if codes_out is not None:
            codes_out = [torch.from_numpy(codes) for codes in codes_out]
    return OmniTalkerPipelineOutput(audio=audio_out, sample_rate=SAMPLE_RATE, frames=frames_out, fps=float(fps),
                                    mel=mel_out, visual_codes=codes_out, reference_text=reference_text, mode=mode)


def watermark(frames, wave: np.ndarray) -> tuple:
    """Visible label + invisible frame and audio marks; a ``FrameStream`` is marked chunk by chunk as it is read."""
    from omnitalker.io.frames import FrameStream
    from omnitalker.io.watermark import apply_watermarks, embed_audio_watermark

    if frames is None:  # speech only (mode="audio")
        return None, np.asarray(embed_audio_watermark(wave, SAMPLE_RATE), dtype=np.float32)
    if isinstance(frames, FrameStream):
        marked = frames.map(lambda chunk: apply_watermarks(chunk)[0])
        return marked, np.asarray(embed_audio_watermark(wave, SAMPLE_RATE), dtype=np.float32)
    frames, wave = apply_watermarks(frames, wave, SAMPLE_RATE)
    return frames, np.asarray(wave, dtype=np.float32)
