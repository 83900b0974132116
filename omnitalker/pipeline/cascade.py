"""mode="cascade" (the paper's baseline): this pipeline speaks, a second pipeline's visual branch lip-syncs the face
to that speech (``omnitalker.pipeline.modes`` says when it runs): ``run_cascade`` composes the two pipelines' steps.
``CascadeMixin`` holds the pipeline's public methods for it (branches, the visual pipeline) and the CFG defaults
of a call; they read only the pipeline's config."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from diffusers.utils import logging

from omnitalker.flow.guidance import STRENGTHS, GuidanceConfig
from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.pipeline.decode import OmniTalkerPipelineOutput
from omnitalker.pipeline.modes import (
    GUIDANCE_KEYS,
    branches_of,
    load_visual_pipeline,
)
from omnitalker.pipeline.plan import CallPlan, Mode, check_components, lipsync_plan, speech_plan
from omnitalker.pipeline.prepare import load_driving

logger = logging.get_logger(__name__)


class CascadeMixin:
    """The cascade and the per-call guidance strengths of ``OmniTalkerPipeline``."""

    _visual_pipeline = None  # the cascade's second pipeline, loaded on first use

    @property
    def branches(self) -> tuple[str, ...]:
        """The trained branches of these weights: ("audio", "visual"), or ("audio",) for a converted F5-TTS."""
        return branches_of(self)

    def set_visual_pipeline(self, pipeline) -> None:
        """The cascade's visual pipeline: an ``OmniTalkerPipeline`` with a trained visual branch, or a folder / Hub
        id (loaded now and saved in model_index.json)."""
        import os

        self._visual_pipeline = load_visual_pipeline(pipeline, self.device)
        if isinstance(pipeline, (str, os.PathLike)):
            self.register_to_config(visual_pipeline=os.fspath(pipeline))

    def get_visual_pipeline(self, override=None):
        """The pipeline whose visual branch animates the face in cascade mode: `override` (a pipeline, folder or
        Hub id), else the one set or configured (loaded once), else the bundled demo."""
        if override is not None:
            return load_visual_pipeline(override, self.device)
        if self._visual_pipeline is None:
            self._visual_pipeline = load_visual_pipeline(self.config.get("visual_pipeline"), self.device)
        return self._visual_pipeline

    def guidance_strengths(self, text=None, audio=None, visual=None, joint=None) -> tuple[float, float, float, float]:
        """The (text, audio, visual, joint) CFG strengths of a call: each as given, else the pipeline's `guidance`
        config, else the module default (``omnitalker.flow.guidance``)."""
        defaults = self._guidance_defaults()
        given = dict(zip(STRENGTHS, (text, audio, visual, joint), strict=True))
        return tuple(float(defaults[key] if given[key] is None else given[key]) for key in STRENGTHS)

    def guidance_refresh_every(self, refresh_every: int | None = None) -> int:
        """The call's guidance reuse (``GuidanceConfig.refresh_every``): as given, else the pipeline's `guidance`
        config, else the module default."""
        return int(self._guidance_defaults()["refresh_every"] if refresh_every is None else refresh_every)

    def _guidance_defaults(self) -> dict:
        module_defaults = GuidanceConfig()
        return {**{key: getattr(module_defaults, key) for key in GUIDANCE_KEYS}, **(self.config.get("guidance") or {})}


def run_cascade(speech, visual, plan: CallPlan) -> OmniTalkerPipelineOutput:
    """The paper's cascade baseline, composed of the steps: (a) `speech` (this pipeline) speaks each text with its
    audio branch (``Mode.SPEECH``, unmarked; ``speak``), (b) `visual` lip-syncs the reference face to that speech with
    its audio-driven visual branch and its own guidance defaults (``Mode.LIPSYNC``; it also watermarks). With speech
    given (``Mode.CASCADE_LIPSYNC``), only (b) runs on it."""
    reference, drivings, mels = speak(speech, visual, plan)
    outputs = [visual.finish(item, reference, visual.generate(item, reference, driving))
               for item, driving in lipsync_items(speech, visual, plan, drivings)]
    if mels is None:
        mels = [out.mel[0] for out in outputs]
    elif plan.output_type == "pt":
        mels = [torch.from_numpy(mel) for mel in mels]
    media = plan.decode
    return OmniTalkerPipelineOutput(
        audio=[out.audio[0] for out in outputs] if media else None, sample_rate=SAMPLE_RATE,
        frames=[out.frames[0] for out in outputs] if media else None, fps=float(visual.config.video_fps),
        mel=mels[: len(outputs)], visual_codes=[out.visual_codes[0] for out in outputs],
        reference_text=reference.text, mode=plan.mode.output_name)


def speak(speech, visual, plan: CallPlan) -> tuple:
    """Step (a): (reference, the speech of every item as (sample rate, wave), their mels (100, g) or None when the
    speech was given)."""
    check_components(visual, Mode.LIPSYNC, plan.output_type, "the cascade's visual pipeline")
    if getattr(speech, "_progress_bar_config", None) is not None:
        visual.set_progress_bar_config(**speech._progress_bar_config)
    reference = speech.call_reference(plan)
    if plan.mode is not Mode.CASCADE:
        return reference, [plan.audio], None
    spoken = speech.generate(speech_plan(plan), reference, None)  # (mel, codes, wave) per text
    speech.maybe_free_model_hooks()
    return reference, [(SAMPLE_RATE, wave.numpy()) for _, _, wave in spoken], [mel.T.contiguous().numpy()
                                                                              for mel, _, _ in spoken]


def lipsync_items(speech, visual, plan: CallPlan, drivings: list) -> Iterator[tuple]:
    """Step (b), item by item: (the visual pipeline's lip-sync plan, the speech read as ``load_driving`` reads it)."""
    strengths = visual.guidance_strengths(None, None, plan.visual_guidance, None)
    guidance = GuidanceConfig(**dict(zip(STRENGTHS, strengths, strict=True)), anneal=plan.guidance.anneal,
                              refresh_every=visual.guidance_refresh_every())
    for index, driving in enumerate(drivings):
        if speech.interrupt:
            break
        text = None if plan.texts is None else plan.texts[index]
        item = lipsync_plan(plan, guidance, text, plan.generators[index], given_speech=plan.mode is not Mode.CASCADE)
        yield item, load_driving(driving)
