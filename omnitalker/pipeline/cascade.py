"""mode="cascade" (the paper's baseline): this pipeline speaks, a second pipeline's visual branch lip-syncs the face
to that speech (``omnitalker.pipeline.modes`` says when it runs); the CFG strengths of a call."""

from __future__ import annotations

import dataclasses

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

logger = logging.get_logger(__name__)


class CascadeMixin:
    """The cascade and the per-call guidance strengths of ``OmniTalkerPipeline``."""

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

    def _cascade(self, texts, audio, reference, reference_args, visual_pipeline, *, output_type, limits, max_side,
                 generator, speech: dict, motion: dict) -> OmniTalkerPipelineOutput:
        """The paper's cascade baseline: (a) this pipeline speaks each text with its audio branch (mode="audio"),
        (b) the visual pipeline lip-syncs the reference face to that speech with its audio-driven visual branch
        (``_lipsync`` of that pipeline; it also watermarks). With `audio` given, only (b) runs on it."""
        visual = self.get_visual_pipeline(visual_pipeline)
        if getattr(self, "_progress_bar_config", None) is not None:
            visual.set_progress_bar_config(**self._progress_bar_config)
        if reference is None:
            reference = self.prepare_reference(*reference_args, max_side=max_side, limits=limits)
            self.check_inputs(texts, audio, reference, speech["num_inference_steps"], speech["speed"],
                              speech["duration"], speech["max_chunk_seconds"], output_type, generator,
                              speech["callback_on_step_end_tensor_inputs"], limits, max_side, mode="cascade")
        items = len(texts) if audio is None else 1
        generators = generator if isinstance(generator, list) else [generator] * items
        if audio is None:
            spoken = self(texts, reference=reference, mode="audio", generator=generator, output_type="np",
                          watermark=False, limits=limits, **speech)  # marked once, with the frames, in (b)
            drivings, mels = [(SAMPLE_RATE, wave) for wave in spoken.audio], spoken.mel
            limits = dataclasses.replace(limits, max_audio_seconds=None)  # our own speech: the text was checked
        else:
            drivings, mels = [audio], None
        outputs = []
        for index, driving in enumerate(drivings):
            if self._interrupt:
                break
            outputs.append(visual(None if texts is None else texts[index], audio=driving, reference=reference,
                                  mode="joint", generator=generators[index], output_type=output_type,
                                  max_side=max_side, limits=limits, **motion))
        if mels is None:
            mels = [out.mel[0] for out in outputs]
        elif output_type == "pt":
            mels = [torch.from_numpy(mel) for mel in mels]
        media = output_type != "latent"
        output = OmniTalkerPipelineOutput(
            audio=[out.audio[0] for out in outputs] if media else None, sample_rate=SAMPLE_RATE,
            frames=[out.frames[0] for out in outputs] if media else None, fps=float(visual.config.video_fps),
            mel=mels[: len(outputs)], visual_codes=[out.visual_codes[0] for out in outputs],
            reference_text=reference.text, mode="cascade")
        return output

