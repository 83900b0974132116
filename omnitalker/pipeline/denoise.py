"""Step 4 of ``OmniTalkerPipeline.__call__``: in-fill [prompt | target] segments with the flow sampler: one batched
solve, chunk by chunk with motion frames, or lip-sync windows over given speech.

    sampler = Sampler(transformer, scheduler, tokenizer, device, mel_smoothing, durations, timing, word_starts, ...)
    for chunk in sampler.sample(reference, chunk_plans, generators, guidance, steps, audio_only=False):
        ...   # SampledChunk: item index, mel (g, 100), codes (g, 58), frames regenerated over the previous chunk

``sample`` yields each chunk as soon as it is solved (the chunk loop where the streaming call and ``__call__``
meet); joining the chunks (cross-fades) is ``join_chunks``. Everything a step uses is a field of ``Sampler``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from diffusers.utils import logging

from omnitalker.flow.guidance import GuidanceConfig
from omnitalker.flow.sampling import sample
from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import HOP_LENGTH
from omnitalker.frontend.phonemes import PAUSE_ID
from omnitalker.frontend.text import PAD_ID, prepare_reference_text, text_length
from omnitalker.pipeline.chunking import (
    DEFAULT_CROSSFADE_SECONDS,
    DEFAULT_MOTION_SECONDS,
    crossfade,
    tail_text,
)
from omnitalker.pipeline.mel_smoothing import smooth_mel
from omnitalker.pipeline.text_layout import TextLayout, prompt_window

logger = logging.get_logger(__name__)

SPACE_ID = 0  # the tokenizer's space token: the "no text" input when no transcript exists


@dataclass
class Segment:
    """One in-filling problem: [prompt | num_frames to generate] with its token text."""

    prompt_mel: torch.Tensor  # p 100
    prompt_codes: torch.Tensor  # p 58
    text: str | None  # prompt transcript + target text; None = no text (audio-driven without transcript)
    num_frames: int
    known_mel: torch.Tensor | None = None  # num_frames 100: given speech (audio-driven)
    layout: TextLayout | None = None  # "durations" models: phoneme ids + frames over [prompt | target]


@dataclass
class SampledChunk:
    """One solved chunk of one item: its mel (g, 100) and codes (g, 58; (g, 0) for speech only), of which the first
    `overlap` frames regenerate the previous chunk's last ones (cross-faded by ``join_chunks``)."""

    item: int
    mel: torch.Tensor | None  # g 100 (None for lip-sync: the mel is the given speech's)
    codes: torch.Tensor  # g 58
    overlap: int = 0
    last: bool = True  # the item's last chunk
    wave: torch.Tensor | None = None  # nw: set by the vocoder step


class StepHook:
    """Called by the sampler after every solver step of a pipeline call: counts steps across chunks, advances
    the progress bar and runs the user's ``callback_on_step_end`` with diffusers' tensor names."""

    LATENT_NAMES = {"audio_latents": "audio", "visual_latents": "visual"}

    def __init__(self, pipeline, progress_bar, callback: Callable | None, tensor_inputs: tuple[str, ...]):
        self.pipeline, self.progress_bar = pipeline, progress_bar
        self.callback, self.tensor_inputs = callback, tensor_inputs
        self.steps_done = 0

    def __call__(self, step: int, timestep, latents: dict) -> dict:
        returned = {}
        if self.callback is not None:
            kwargs = {name: latents[self.LATENT_NAMES[name]] for name in self.tensor_inputs
                      if self.LATENT_NAMES[name] in latents}  # speech only: no visual latents
            outputs = self.callback(self.pipeline, self.steps_done, timestep, kwargs) or {}
            returned = {self.LATENT_NAMES[name]: value for name, value in outputs.items() if name in self.LATENT_NAMES}
        self.steps_done += 1
        self.progress_bar.update()
        return returned


def solver_calls(chunk_plans: list[list], driven: bool) -> int:
    """Solves a call makes: one batched solve when every item is one chunk, else one per chunk / window."""
    if driven or any(len(plan) > 1 for plan in chunk_plans):
        return sum(len(plan) for plan in chunk_plans)
    return 1


@dataclass
class Sampler:
    """The flow sampler of one call, with everything it reads (module docstring)."""

    transformer: torch.nn.Module
    scheduler: object
    tokenizer: object
    device: torch.device
    mel_smoothing: list | None
    durations: bool  # the transformer lays phonemes out by duration (Voicebox-style)
    timing: object | None  # the reference's ReferenceTiming for a "durations" model speaking text, else None
    word_starts: set = field(default_factory=set)  # phoneme ids a prompt may be cut before ("durations")
    should_stop: Callable = lambda: False  # diffusers' `pipe._interrupt`: keep what was reached
    on_step: Callable | None = None

    def sample(self, reference, chunk_plans: list[list], generators, guidance: GuidanceConfig,
               num_inference_steps: int, audio_only: bool = False) -> Iterator[SampledChunk]:
        """The chunks of text items in order: one batched solve when every item fits one chunk, else chunk by
        chunk with the motion frames of the previous one."""
        if solver_calls(chunk_plans, driven=False) == 1:
            segments = [self.joint_segment(reference, plan[0], None) for plan in chunk_plans]
            results = self.denoise(segments, list(generators), guidance, num_inference_steps, audio_only)
            for item, (mel, codes) in enumerate(results):
                yield SampledChunk(item, mel, codes)
            return
        for item, (plan, generator) in enumerate(zip(chunk_plans, generators, strict=True)):
            yield from self.joint_chunks(item, reference, plan, generator, guidance, num_inference_steps, audio_only)

    def denoise(self, segments: list[Segment], generators: list, guidance: GuidanceConfig, num_inference_steps: int,
                audio_only: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """In-fill a batch of segments; returns per segment (mel (g, 100), codes (g, 58)) of the target
        (`audio_only`: the visual stream is absent; codes are then (g, 0))."""
        dtype = self.transformer.dtype
        text_durations = None
        if self.durations:
            text_ids, text_durations, totals = layout_batch(segments)  # b nt, b nt
            if all(segment.layout is None for segment in segments):
                guidance = dataclasses.replace(guidance, text=0.0)  # only pauses: nothing to guide towards
        else:
            has_text = any(segment.text is not None for segment in segments)
            if has_text:
                text_ids = self.tokenizer.encode([segment.text or " " for segment in segments])  # b nt
            else:
                text_ids = torch.full((len(segments), 1), SPACE_ID, dtype=torch.long)
                guidance = dataclasses.replace(guidance, text=0.0)  # nothing to guide towards
            text_tokens = (text_ids >= 0).sum(dim=1)
            # every text token needs a frame (F5-TTS: duration >= tokens + 1)
            totals = [max(len(s.prompt_mel) + s.num_frames, int(n) + 1)
                      for s, n in zip(segments, text_tokens, strict=True)]
        targets = [total - len(segment.prompt_mel) for segment, total in zip(segments, totals, strict=True)]
        num_frames = max(totals)
        audio_cond, visual_cond, audio_mask, visual_mask = self.conditions(segments, targets, num_frames)
        lengths = torch.tensor(totals)
        attention_mask = None
        if len(set(totals)) > 1:  # only pad-mask when lengths differ: a mask-free batch is the fast path
            attention_mask = (torch.arange(num_frames)[None] < lengths[:, None]).to(self.device)  # b n

        out = sample(
            self.transformer,
            self.scheduler,
            text_ids=text_ids.to(self.device),
            num_frames=num_frames,
            audio_cond=audio_cond.to(self.device, dtype),
            visual_cond=None if audio_only else visual_cond.to(self.device, dtype),
            audio_cond_mask=audio_mask.to(self.device),
            visual_cond_mask=None if audio_only else visual_mask.to(self.device),
            attention_mask=attention_mask,
            guidance=guidance,
            num_inference_steps=num_inference_steps,
            generator=generators if len(generators) > 1 else generators[0],
            callback_on_step_end=self.on_step,
            text_durations=None if text_durations is None else text_durations.to(self.device),
            should_stop=self.should_stop,
        )
        results = []
        for row, (segment, target) in enumerate(zip(segments, targets, strict=True)):
            span = slice(len(segment.prompt_mel), len(segment.prompt_mel) + target)
            codes = torch.zeros(target, 0) if out.visual is None else out.visual[row, span].float().cpu()  # g 58
            mel = smooth_mel(out.audio[row, span].float().cpu(), self.mel_smoothing)  # g 100
            results.append((mel, codes))
        return results

    def conditions(self, segments: list[Segment], targets: list[int], num_frames: int) -> tuple[torch.Tensor, ...]:
        """The prompts (and given speech) of a batch laid over `num_frames`: audio (b n 100) and visual (b n 58)
        conditions with their masks (b n)."""
        batch = len(segments)
        audio_cond = torch.zeros(batch, num_frames, self.transformer.config.mel_dim)  # b n 100
        visual_cond = torch.zeros(batch, num_frames, self.transformer.config.visual_dim)  # b n 58
        audio_mask = torch.zeros(batch, num_frames, dtype=torch.bool)  # b n
        visual_mask = torch.zeros(batch, num_frames, dtype=torch.bool)  # b n
        for row, segment in enumerate(segments):
            prompt = len(segment.prompt_mel)
            audio_cond[row, :prompt] = segment.prompt_mel
            visual_cond[row, :prompt] = segment.prompt_codes
            audio_mask[row, :prompt] = visual_mask[row, :prompt] = True
            if segment.known_mel is not None:
                known = segment.known_mel[: targets[row]]
                audio_cond[row, prompt : prompt + len(known)] = known
                audio_mask[row, prompt : prompt + len(known)] = True
        return audio_cond, visual_cond, audio_mask, visual_mask

    def joint_segment(self, reference, chunk: tuple, tail: tuple | None) -> Segment:
        """A text chunk (text, frames, layout) as a segment; `tail` = (mel, codes, transcript, layout) motion
        frames of the previous chunk (layout None for models without the "durations" layout)."""
        text, frames, layout = chunk
        prompt_text = prepare_reference_text(reference.text)
        prompt_mel, prompt_codes = reference.mel, reference.codes
        prompt = None
        if layout is not None:  # durations: only part of the prompt, within its trained share of the sequence
            prompt = self.timing.layout
            kept = prompt_window(prompt, frames, self.word_starts, 0 if tail is None else len(tail[0]))
            prompt_mel, prompt_codes = prompt_mel[kept], prompt_codes[kept]
            prompt = prompt.slice_frames(kept.start, kept.stop)
        if tail is not None:
            tail_mel, tail_codes, tail_transcript, tail_layout = tail
            prompt_mel = torch.cat([prompt_mel, tail_mel])
            prompt_codes = torch.cat([prompt_codes, tail_codes])
            prompt_text = prompt_text + (tail_transcript + " " if tail_transcript else "")
            if prompt is not None:
                prompt = prompt + tail_layout
        return Segment(prompt_mel, prompt_codes, prompt_text + text, frames,
                       layout=None if layout is None else prompt + layout)

    def joint_chunks(self, item: int, reference, plan, generator, guidance, num_inference_steps,
                     audio_only: bool = False) -> Iterator[SampledChunk]:
        """The chunks of one text in turn, each prompted with the reference and the previous chunk's last frames
        (``omnitalker.pipeline.pipeline_omnitalker``'s docstring)."""
        overlap = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)
        motion = round(DEFAULT_MOTION_SECONDS * MEL_FRAME_RATE)
        previous = None  # (mel, codes, text, layout) of the last chunk
        for index, (text, frames, layout) in enumerate(plan):
            if self.should_stop():
                break
            tail, regenerate = None, 0
            if previous is not None:
                prev_mel, prev_codes, prev_text, prev_layout = previous
                if prev_layout is not None:  # durations: the tokens of every frame are known exactly
                    span = min(len(prev_mel), max(motion, overlap + 1))
                    transcript = None
                else:
                    transcript = tail_text(prev_text, round(motion * text_length(prev_text) / len(prev_mel)))
                    span = round(len(prev_mel) * text_length(transcript) / max(1, text_length(prev_text)))
                    span = min(len(prev_mel), max(span, overlap + 1))
                regenerate = min(overlap, span - 1)
                given = slice(len(prev_mel) - span, len(prev_mel) - regenerate)
                tail_layout = None
                if prev_layout is not None:
                    tail_layout = prev_layout.slice_frames(given.start, given.stop)
                    layout = prev_layout.slice_frames(given.stop, len(prev_mel)) + layout
                tail_codes = prev_codes[given]  # t 58
                if audio_only:  # no visual stream: the prompt's codes are never read, but keep their width
                    tail_codes = torch.zeros(len(tail_codes), reference.codes.shape[1])  # t 58
                tail = (prev_mel[given], tail_codes, transcript, tail_layout)
            segment = self.joint_segment(reference, (text, frames + regenerate, layout), tail)
            ((mel, codes),) = self.denoise([segment], [generator], guidance, num_inference_steps, audio_only)
            yield SampledChunk(item, mel, codes, regenerate, last=index == len(plan) - 1)
            previous = (mel, codes, text, layout)

    def lipsync(self, reference, driving_mel: torch.Tensor, transcript: str | None, windows, generator, guidance,
                num_inference_steps) -> Iterator[SampledChunk]:
        """Audio-driven: in-fill the visual codes for the given speech (n, 100), window by window."""
        motion = round(DEFAULT_MOTION_SECONDS * MEL_FRAME_RATE)
        overlap = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)
        codes_total = None
        prompt_text = prepare_reference_text(reference.text) if reference.text else ""
        for index, (start, end) in enumerate(windows):
            if self.should_stop():
                break
            prompt_mel, prompt_codes, regenerate = reference.mel, reference.codes, 0
            if codes_total is not None:
                regenerate = min(overlap, start)
                tail_start = max(0, start - motion)
                given = slice(tail_start, start - regenerate)
                prompt_mel = torch.cat([prompt_mel, driving_mel[given]])
                prompt_codes = torch.cat([prompt_codes, codes_total[given]])
            text = prompt_text + transcript if (transcript and len(windows) == 1) else None
            segment = Segment(prompt_mel, prompt_codes, text, end - start + regenerate,
                              known_mel=driving_mel[start - regenerate : end])
            ((_, codes),) = self.denoise([segment], [generator], guidance, num_inference_steps)
            codes = codes[: end - start + regenerate]  # g 58
            codes_total = codes if codes_total is None else crossfade(codes_total, codes, regenerate)
            yield SampledChunk(0, None, codes, regenerate, last=index == len(windows) - 1)


def join_chunks(chunks: list[SampledChunk], items: int) -> list[tuple]:
    """Per item (mel, codes, wave): its chunks cross-faded over the frames each regenerates (samples for the
    wave); None where the chunks carry none (lip-sync mel, undecoded waves)."""
    joined = [[None, None, None] for _ in range(items)]
    for chunk in chunks:
        mel, codes, wave = joined[chunk.item]
        joined[chunk.item] = [
            _joined(mel, chunk.mel, chunk.overlap),
            _joined(codes, chunk.codes, chunk.overlap),
            _joined(wave, chunk.wave, chunk.overlap * HOP_LENGTH),
        ]
    return [tuple(item) for item in joined]


def _joined(total: torch.Tensor | None, new: torch.Tensor | None, overlap: int) -> torch.Tensor | None:
    if new is None:
        return total
    return new if total is None else crossfade(total, new, overlap)


def layout_batch(segments: list[Segment]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Phoneme ids and frames per token (b nt, padded -1 / 0) of segments for a "durations" model, and each
    segment's total frames. A segment without a layout (lip-sync: speech given, no aligned transcript) is
    one pause over all its frames."""
    layouts = []
    for segment in segments:
        total = len(segment.prompt_mel) + segment.num_frames
        layout = segment.layout if segment.layout is not None else TextLayout([PAUSE_ID], [total])
        if layout.num_frames != total:
            raise ValueError(f"phoneme durations cover {layout.num_frames} frames but the segment has {total}")
        layouts.append(layout)
    longest = max(len(layout.ids) for layout in layouts)
    ids = torch.full((len(layouts), longest), PAD_ID, dtype=torch.long)  # b nt
    durations = torch.zeros(len(layouts), longest, dtype=torch.long)  # b nt
    for row, layout in enumerate(layouts):
        ids[row, : len(layout.ids)], durations[row, : len(layout.ids)] = layout.tensors()
    return ids, durations, [layout.num_frames for layout in layouts]
