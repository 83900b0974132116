"""Step 4 of ``OmniTalkerPipeline.__call__``: in-fill [prompt | target] segments with the flow sampler: one batched
solve, chunk by chunk with motion frames and cross-fades, or lip-sync windows over given speech."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.utils import logging

from omnitalker.flow.guidance import (
    GuidanceConfig,
)
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
class _Segment:
    """One in-filling problem: [prompt | num_frames to generate] with its token text."""

    prompt_mel: torch.Tensor  # p 100
    prompt_codes: torch.Tensor  # p 58
    text: str | None  # prompt transcript + target text; None = no text (audio-driven without transcript)
    num_frames: int
    known_mel: torch.Tensor | None = None  # num_frames 100: given speech (audio-driven)
    layout: TextLayout | None = None  # "durations" models: phoneme ids + frames over [prompt | target]


class _StepHook:
    """Called by the sampler after every solver step of a pipeline call: counts steps across chunks, advances
    the progress bar and runs the user's ``callback_on_step_end`` with diffusers' tensor names."""

    LATENT_NAMES = {"audio_latents": "audio", "visual_latents": "visual"}

    def __init__(self, pipeline, progress_bar, callback: Callable | None, tensor_inputs: list[str]):
        self.pipeline, self.progress_bar = pipeline, progress_bar
        self.callback, self.tensor_inputs = callback, tensor_inputs
        self.steps_done = 0

    def __call__(self, step: int, timestep, latents: dict) -> dict:
        returned = {}
        if self.callback is not None:
            kwargs = {name: latents[self.LATENT_NAMES[name]] for name in self.tensor_inputs}
            outputs = self.callback(self.pipeline, self.steps_done, timestep, kwargs) or {}
            returned = {self.LATENT_NAMES[name]: value for name, value in outputs.items() if name in self.LATENT_NAMES}
        self.steps_done += 1
        self.progress_bar.update()
        return returned


class DenoiseMixin:
    """Sampling of ``OmniTalkerPipeline`` (step 4)."""

    def _sample_items(self, reference, plans, generators, guidance, num_inference_steps, callback_on_step_end,
                      tensor_inputs, *, driving, driving_mel, transcript, decode: bool, audio_only: bool):
        """Step 4 of ``__call__``: (mel items (g, 100), code items (g, 58), waves or None) for the planned items:
        one batched solve when every item fits one chunk, chunk by chunk otherwise, or lip-sync windows."""
        solver_calls = 1
        if driving is not None or any(len(plan) > 1 for plan in plans):
            solver_calls = sum(len(plan) for plan in plans)
        self.scheduler.set_timesteps(num_inference_steps)
        evaluations_per_call = len(self.scheduler.timesteps)
        self._num_timesteps = evaluations_per_call  # diffusers' `num_timesteps` property
        with self.progress_bar(total=solver_calls * evaluations_per_call) as progress_bar:
            on_step = _StepHook(self, progress_bar, callback_on_step_end, tensor_inputs)
            if driving is not None:
                return self._lipsync(reference, driving, driving_mel, transcript, plans[0], generators[0],
                                     guidance, num_inference_steps, on_step)
            if solver_calls == 1:  # every text fits in one chunk: one batched solve
                segments = [self._joint_segment(reference, plan[0], None) for plan in plans]
                results = self._denoise(segments, generators, guidance, num_inference_steps, on_step,
                                        audio_only=audio_only)
                return [mel for mel, _ in results], [codes for _, codes in results], None
            mel_items, code_items, wave_items = [], [], []
            for plan, item_generator in zip(plans, generators, strict=True):
                mel, codes, wave = self._joint_chunked(reference, plan, item_generator, guidance, num_inference_steps,
                                                       on_step, decode=decode, audio_only=audio_only)
                mel_items.append(mel)
                code_items.append(codes)
                wave_items.append(wave)
            return mel_items, code_items, wave_items

    def _denoise(self, segments: list[_Segment], generators: list, guidance: GuidanceConfig, num_inference_steps: int,
                 on_step: Callable, audio_only: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """In-fill a batch of segments; returns per segment (mel (g, 100), codes (g, 58)) of the target
        (`audio_only`: the visual stream is absent; codes are then (g, 0))."""
        device, dtype = self._execution_device, self.transformer.dtype
        text_durations = None
        if self.uses_durations:
            text_ids, text_durations, totals = _layout_batch(segments)  # b nt, b nt
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
        batch = len(segments)
        audio_cond = torch.zeros(batch, num_frames, self.transformer.config.mel_dim)  # b n 100
        visual_cond = torch.zeros(batch, num_frames, self.transformer.config.visual_dim)  # b n 58
        audio_mask = torch.zeros(batch, num_frames, dtype=torch.bool)
        visual_mask = torch.zeros(batch, num_frames, dtype=torch.bool)
        for row, segment in enumerate(segments):
            prompt = len(segment.prompt_mel)
            audio_cond[row, :prompt] = segment.prompt_mel
            visual_cond[row, :prompt] = segment.prompt_codes
            audio_mask[row, :prompt] = visual_mask[row, :prompt] = True
            if segment.known_mel is not None:
                known = segment.known_mel[: targets[row]]
                audio_cond[row, prompt : prompt + len(known)] = known
                audio_mask[row, prompt : prompt + len(known)] = True
        lengths = torch.tensor(totals)
        attention_mask = None
        if len(set(totals)) > 1:  # only pad-mask when lengths differ: a mask-free batch is the fast path
            attention_mask = (torch.arange(num_frames)[None] < lengths[:, None]).to(device)  # b n

        out = sample(
            self.transformer,
            self.scheduler,
            text_ids=text_ids.to(device),
            num_frames=num_frames,
            audio_cond=audio_cond.to(device, dtype),
            visual_cond=None if audio_only else visual_cond.to(device, dtype),
            audio_cond_mask=audio_mask.to(device),
            visual_cond_mask=None if audio_only else visual_mask.to(device),
            attention_mask=attention_mask,
            guidance=guidance,
            num_inference_steps=num_inference_steps,
            generator=generators if len(generators) > 1 else generators[0],
            callback_on_step_end=on_step,
            text_durations=None if text_durations is None else text_durations.to(device),
            should_stop=self._should_stop,  # diffusers' `pipe._interrupt`: keep what was reached
        )
        results = []
        for row, (segment, target) in enumerate(zip(segments, targets, strict=True)):
            span = slice(len(segment.prompt_mel), len(segment.prompt_mel) + target)
            codes = torch.zeros(target, 0) if out.visual is None else out.visual[row, span].float().cpu()
            mel = smooth_mel(out.audio[row, span].float().cpu(), self.config.get("mel_smoothing"))  # g 100
            results.append((mel, codes))
        return results

    def _joint_segment(self, reference, chunk: tuple, tail: tuple | None) -> _Segment:
        """A text chunk (text, frames, layout) as a segment; `tail` = (mel, codes, transcript, layout) motion
        frames of the previous chunk (layout None for models without the "durations" layout)."""
        text, frames, layout = chunk
        prompt_text = prepare_reference_text(reference.text)
        prompt_mel, prompt_codes = reference.mel, reference.codes
        prompt = None
        if layout is not None:  # durations: only part of the prompt, within its trained share of the sequence
            prompt = self._prompt_layout(reference).layout
            kept = prompt_window(prompt, frames, self.word_start_ids(), 0 if tail is None else len(tail[0]))
            prompt_mel, prompt_codes = prompt_mel[kept], prompt_codes[kept]
            prompt = prompt.slice_frames(kept.start, kept.stop)
        if tail is not None:
            tail_mel, tail_codes, tail_transcript, tail_layout = tail
            prompt_mel = torch.cat([prompt_mel, tail_mel])
            prompt_codes = torch.cat([prompt_codes, tail_codes])
            prompt_text = prompt_text + (tail_transcript + " " if tail_transcript else "")
            if prompt is not None:
                prompt = prompt + tail_layout
        return _Segment(prompt_mel, prompt_codes, prompt_text + text, frames,
                        layout=None if layout is None else prompt + layout)

    def _joint_chunked(self, reference, plan, generator, guidance, num_inference_steps, on_step, decode: bool,
                       audio_only: bool = False):
        """Generate the chunks of one text in turn (module docstring); returns (mel, codes, wave | None)."""
        overlap = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)
        motion = round(DEFAULT_MOTION_SECONDS * MEL_FRAME_RATE)
        mel_total = codes_total = wave_total = None
        previous = None  # (mel, codes, text, layout) of the last chunk
        for text, frames, layout in plan:
            if self._interrupt:
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
                tail = (prev_mel[given], prev_codes[given], transcript, tail_layout)
            segment = self._joint_segment(reference, (text, frames + regenerate, layout), tail)
            ((mel, codes),) = self._denoise([segment], [generator], guidance, num_inference_steps, on_step,
                                            audio_only=audio_only)
            mel_total = mel if mel_total is None else crossfade(mel_total, mel, regenerate)
            codes_total = codes if codes_total is None else crossfade(codes_total, codes, regenerate)
            if decode:
                wave = self._vocode(mel, reference.gain)
                wave_total = wave if wave_total is None else crossfade(wave_total, wave, regenerate * HOP_LENGTH)
            previous = (mel, codes, text, layout)
        return mel_total, codes_total, wave_total

    def _lipsync(self, reference, driving, driving_mel, transcript, windows, generator, guidance,
                 num_inference_steps, on_step):
        """Audio-driven: in-fill the visual codes for the given speech, window by window."""
        motion = round(DEFAULT_MOTION_SECONDS * MEL_FRAME_RATE)
        overlap = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)
        codes_total = None
        prompt_text = prepare_reference_text(reference.text) if reference.text else ""
        for start, end in windows:
            if self._interrupt:
                break
            prompt_mel, prompt_codes, regenerate = reference.mel, reference.codes, 0
            if codes_total is not None:
                regenerate = min(overlap, start)
                tail_start = max(0, start - motion)
                given = slice(tail_start, start - regenerate)
                prompt_mel = torch.cat([prompt_mel, driving_mel[given]])
                prompt_codes = torch.cat([prompt_codes, codes_total[given]])
            text = prompt_text + transcript if (transcript and len(windows) == 1) else None
            segment = _Segment(prompt_mel, prompt_codes, text, end - start + regenerate,
                               known_mel=driving_mel[start - regenerate : end])
            ((_, codes),) = self._denoise([segment], [generator], guidance, num_inference_steps, on_step)
            codes = codes[: end - start + regenerate]
            codes_total = codes if codes_total is None else crossfade(codes_total, codes, regenerate)
        return [driving_mel], [codes_total], [driving.float().clamp(-1.0, 1.0)]


def _layout_batch(segments: list[_Segment]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
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

