"""``OmniTalkerPipeline.stream``: the output chunk by chunk, each as soon as it is decoded (issue 34, item 1).

    for chunk in pipe.stream("Hello there.", reference_video="ref.mp4", reference_text="Hi, I am Ann."):
        play(chunk.audio, chunk.frames)          # (samples,) float32 at 24 kHz, (T, H, W, 3) uint8 at pipe fps
        chunk.start, chunk.is_last               # seconds into the item, the item's last chunk
    chunk.mel, chunk.visual_codes                # on the item's last chunk: the whole item's, as __call__ gives them

``first_chunk_seconds`` (a ``__call__`` argument; ``chunking.DEFAULT_FIRST_CHUNK_SECONDS`` for a player) makes the
first chunk about a second of speech, cut at a pause or a word, so the first piece comes out early; pass the same to
``__call__`` to get the same output whole.

The streaming call shares ``__call__``'s steps: the same plan, reference and chunk loop (``OmniTalkerPipeline.chunks``:
plan segments, sample, vocode); ``Emitter`` joins the chunks exactly as ``join_chunks`` does and hands out what no
later chunk can change. A chunk's last ``DEFAULT_CROSSFADE_SECONDS`` are held back (the next chunk regenerates and
cross-fades them), and so are the video frames whose codes the next chunk or the anti-alias filter of the frame-rate
change (``retime``) still reaches. So, concatenated, the chunks equal ``__call__``'s output for the same seed, with
these documented differences:

- the audio watermark is embedded in each chunk's audio on its own (frames are marked frame by frame either way);
  audio is handed out in pieces of at least ``AUDIO_MIN_SECONDS`` so every piece carries the mark;
- ``match_reference_motion`` / ``match_reference_expression`` (the demo's config) see the codes joined so far, not
  the whole output: the motion size and the gaze and lid replay's weight are measured on them (drawn with a
  generator seeded from the call's, so the sampling noise is the same as ``__call__``'s). Blinks, fixations and
  the replay's start are drawn in time order with the same seed for every piece and for ``__call__``
  (``style_generator``), so the frames already sent keep theirs and the stream blinks and looks where ``__call__``
  does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import HOP_LENGTH, SAMPLE_RATE
from omnitalker.frontend.face.codes import ANTI_ALIAS_SIGMA, retime, video_frame_count
from omnitalker.io.watermark import AUDIO_MIN_SECONDS
from omnitalker.pipeline.chunking import DEFAULT_CROSSFADE_SECONDS
from omnitalker.pipeline.denoise import SampledChunk, _joined
from omnitalker.pipeline.expression_style import style_generator

GAUSSIAN_TRUNCATE = 4.0  # scipy's gaussian_filter1d reaches this many sigmas (retime's anti-alias filter)


@dataclass
class OmniTalkerChunk:
    """One streamed piece of one item: audio (samples,) float32 at ``sample_rate`` and frames (T, H, W, 3) uint8
    at ``fps`` (None for speech only), starting ``start`` seconds (audio) / ``frame_start`` frames into the item."""

    audio: np.ndarray
    frames: np.ndarray | None
    start: float
    frame_start: int
    is_last: bool
    item: int = 0
    sample_rate: int = SAMPLE_RATE
    fps: float = 25.0
    mel: np.ndarray | None = None  # the item's last chunk: its whole mel (100, g), for plots (``__call__``'s ``mel``)
    visual_codes: np.ndarray | None = None  # ... and its codes (T30, 58) at CODE_FPS (``__call__``'s ``visual_codes``)


class Emitter:
    """Joins one item's chunks and hands out the settled part (module docstring)."""

    def __init__(self, pipe, plan, reference, item: int, driving_wave: torch.Tensor | None,
                 driving_mel: torch.Tensor | None = None):
        self.pipe, self.plan, self.reference, self.item = pipe, plan, reference, item
        self.driving_wave = driving_wave  # lip-sync: the given speech is the soundtrack
        self.mel = driving_mel  # n 100: joined as chunks come (lip-sync: the given speech's)
        self.fps = pipe.config.video_fps
        self.hold = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)  # mel frames the next chunk may regenerate
        filter_reach = GAUSSIAN_TRUNCATE * ANTI_ALIAS_SIGMA * MEL_FRAME_RATE / self.fps  # mel frames
        self.margin = self.hold + math.ceil(filter_reach) + 1  # codes frames not settled yet
        self.codes = self.wave = None
        self.sent_samples = self.sent_frames = 0
        self.pieces = 0

    def add(self, chunk: SampledChunk) -> OmniTalkerChunk | None:
        self.codes = _joined(self.codes, chunk.codes, chunk.overlap)  # n 58
        if self.driving_wave is None:
            self.mel = _joined(self.mel, chunk.mel, chunk.overlap)  # n 100
        if self.driving_wave is not None:
            self.wave = self.driving_wave[: min(len(self.driving_wave), len(self.codes) * HOP_LENGTH)]
            if chunk.last:
                self.wave = self.driving_wave
        else:
            self.wave = _joined(self.wave, chunk.wave, chunk.overlap * HOP_LENGTH)  # nw
        if chunk.last:
            return self.piece(len(self.wave), video_frame_count(len(self.wave), self.fps), last=True)
        samples = len(self.wave) - self.hold * HOP_LENGTH
        if samples - self.sent_samples < AUDIO_MIN_SECONDS * SAMPLE_RATE:
            return None  # too short to carry the audio mark: it goes out with the next piece
        settled = len(self.codes) - self.margin  # codes frames no later chunk changes
        frames = max(self.sent_frames, math.floor((settled - 1) / MEL_FRAME_RATE * self.fps) + 1)
        return self.piece(samples, frames, last=False)

    def piece(self, samples: int, frames: int, last: bool) -> OmniTalkerChunk:
        from omnitalker.pipeline import decode

        wave = self.wave[self.sent_samples : samples].numpy()  # nw
        video = codes = None
        if self.plan.mode.visual and (frames > self.sent_frames or last):
            codes = self.styled(self.codes)
        if self.plan.mode.visual and frames > self.sent_frames:
            codes_video = retime(codes, MEL_FRAME_RATE, self.fps, frames).numpy()[self.sent_frames :]  # t 58
            source = self.pipe.render_source(self.plan, self.reference)
            video = np.asarray(self.pipe.renderer.render_codes(source, codes_video))
        if self.plan.watermark:
            video, wave = decode.watermark(video, wave)
        out = OmniTalkerChunk(audio=wave, frames=video, start=self.sent_samples / SAMPLE_RATE,
                              frame_start=self.sent_frames, is_last=last, item=self.item, fps=float(self.fps))
        if last:  # the whole item as __call__ formats it (decode.format_output), for plots and checks
            whole = decode.format_output([self.mel], [codes], [self.wave.numpy()], None, "np", self.plan.mode.visual,
                                         self.fps, None, "")
            out.mel, out.visual_codes = whole.mel[0], None if whole.visual_codes is None else whole.visual_codes[0]
        self.sent_samples, self.sent_frames = samples, max(frames, self.sent_frames)
        self.pieces += 1
        return out

    def styled(self, codes: torch.Tensor) -> torch.Tensor:
        """The reference's motion style on the codes known so far (module docstring: a documented difference)."""
        if not (self.pipe.config.get("match_reference_motion") or self.pipe.config.get("match_reference_expression")):
            return codes
        # The same draws for every piece as for __call__ (style_generator): the styling draws in time order
        # (expression_style.py), so the frames already sent keep their blinks and gaze.
        return self.pipe.reference_expression(self.pipe.reference_motion(codes, self.reference.codes),
                                              self.reference, style_generator(self.plan.generators[self.item]))


def stream_chunks(pipe, plan, reference, driving) -> Iterator[OmniTalkerChunk]:
    """Every item's pieces, in the order their chunks are decoded (``OmniTalkerPipeline.chunks``)."""
    if not plan.decode:
        raise ValueError("stream() yields audio and frames: use output_type='np' (or __call__ for 'latent')")
    driving_wave = None if driving is None else driving[0].float().clamp(-1.0, 1.0)  # nw
    driving_mel = None if driving is None else driving[1]  # n 100
    emitters = {}
    for chunk in pipe.chunks(plan, reference, driving):
        if chunk.item not in emitters:
            emitters[chunk.item] = Emitter(pipe, plan, reference, chunk.item, driving_wave, driving_mel)
        piece = emitters[chunk.item].add(chunk)
        if piece is not None:
            yield piece
    pipe.maybe_free_model_hooks()


def stream_cascade(speech, visual, plan) -> Iterator[OmniTalkerChunk]:
    """The cascade streamed: each text spoken whole by `speech` (step a), then its face streamed by `visual` (b)."""
    from omnitalker.pipeline.cascade import lipsync_items, speak

    reference, drivings, _ = speak(speech, visual, plan)
    for index, (item_plan, driving) in enumerate(lipsync_items(speech, visual, plan, drivings)):
        for piece in stream_chunks(visual, item_plan, reference, driving):
            piece.item = index
            yield piece
