"""Which branches a pipeline's weights have, and what each generation mode needs (issue 15).

An ``OmniTalkerPipeline`` runs in one of three modes:

- ``joint``: one transformer generates speech and motion together (the paper); needs a trained audio *and*
  visual branch (the bundled demo, or a jointly trained full-size model);
- ``audio``: speech only, the visual stream absent (F5-TTS-style TTS); needs the audio branch;
- ``cascade``: the paper's cascade baseline: speech from this pipeline's audio branch, then the face
  animated from that speech by the audio-driven visual branch of a second pipeline (``visual_pipeline``;
  default the bundled demo). A converted F5-TTS pipeline (``python -m omnitalker.convert.pipeline``) has
  only an audio branch, so this is its default whenever a reference face is given.

A pipeline says what it has in its config: ``trained_branches`` (model_index.json; None = both, the
default of pipelines saved before this existed), and a transformer built with ``visual_stream=False`` has
no visual branch at all. Lip-sync (``audio=``) needs a visual branch: the pipeline's own, or in cascade
mode the visual pipeline's.

    from omnitalker.pipeline.modes import branches_of
    branches_of(pipe)                      # ("audio",) for a converted F5-TTS, ("audio", "visual") for the demo
"""

from __future__ import annotations

import os
from pathlib import Path

from omnitalker.flow.guidance import STRENGTHS, GuidanceConfig
from omnitalker.frontend.face.codes import VISUAL_CODE_DIM

BRANCHES = ("audio", "visual")
MODES = ("joint", "audio", "cascade")
BUNDLED_DEMO_PIPELINE = Path(__file__).resolve().parents[2] / "weights" / "omnitalker-demo"
GUIDANCE_KEYS = (*STRENGTHS, "refresh_every")  # the keys of a pipeline's `guidance` config (GuidanceConfig fields)
MODE_TEXT = {"joint": "speech and motion generated together by one transformer",
             "audio": "speech only, by this pipeline's audio branch",
             "cascade": "speech by this pipeline's audio branch, then the face lip-synced to it by"}


def check_trained_branches(trained_branches) -> None:
    if trained_branches is None:
        return
    if isinstance(trained_branches, str) or not set(trained_branches) <= set(BRANCHES) or not trained_branches:
        raise ValueError(f"trained_branches must be a non-empty list drawn from {list(BRANCHES)} (or None for "
                         f"both), got {trained_branches!r}")


def check_guidance_defaults(guidance) -> None:
    if guidance is None:
        return
    if not isinstance(guidance, dict) or not set(guidance) <= set(GUIDANCE_KEYS):
        raise ValueError(f"guidance must be a dict with keys from {list(GUIDANCE_KEYS)} (the default strengths "
                         f"and guidance reuse of this pipeline's calls), got {guidance!r}")
    GuidanceConfig(**guidance)  # the values are checked where they are defined


def branches_of(pipe) -> tuple[str, ...]:
    """The trained branches of a pipeline: its config's ``trained_branches`` (None = both), less the visual
    branch when its transformer has no visual stream."""
    trained = pipe.config.get("trained_branches") or BRANCHES
    has_visual_stream = pipe.transformer.config.get("visual_stream", True)
    return tuple(name for name in BRANCHES if name in trained and (name != "visual" or has_visual_stream))


def mode_for(branches) -> str:
    """The mode a call without ``mode=`` runs in: "joint" with a trained visual branch, else "cascade"."""
    return "joint" if "visual" in branches else "cascade"


def resolve_mode(branches: tuple[str, ...], mode: str | None, lipsync: bool) -> str:
    """The mode a call runs in (module docstring); ValueError naming the fix when the weights lack a branch."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} (or None: 'joint' when the pipeline has a trained visual "
                         f"branch, else 'cascade'), got {mode!r}")
    if mode is None:
        mode = mode_for(branches)
    what = f"this pipeline's weights have only the {' and '.join(branches)} branch (config trained_branches)"
    if mode == "audio" and lipsync:
        raise ValueError("mode='audio' speaks text; audio=... lip-syncs a recording: drop one of them")
    if mode == "joint" and "visual" not in branches:
        raise ValueError(
            f"mode='joint' needs a trained visual branch, and {what}: use mode='cascade' (speech from this pipeline, "
            "the face from visual_pipeline=..., default the bundled demo) or mode='audio' (speech only)")
    if mode in ("audio", "cascade") and "audio" not in branches and not (mode == "cascade" and lipsync):
        raise ValueError(f"mode={mode!r} speaks with the audio branch, and {what}: use mode='joint'")
    return mode


def load_visual_pipeline(source, device=None):
    """The cascade's visual pipeline: an ``OmniTalkerPipeline``, or a folder / Hub id to load (None = the
    bundled demo). ValueError when it is missing or has no trained visual branch."""
    from omnitalker.pipeline import OmniTalkerPipeline

    if source is None:
        source = BUNDLED_DEMO_PIPELINE
        if not (source / "model_index.json").is_file():
            raise ValueError(f"the cascade animates the face with a second pipeline's visual branch, and the default, "
                             f"the bundled demo ({source}), is not there: pass visual_pipeline='folder or Hub id' "
                             "(or pipe.set_visual_pipeline(...))")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        local = path.exists() or os.fspath(source).startswith((".", "/", "~")) or os.fspath(source).count("/") != 1
        if local and not (path / "model_index.json").is_file():
            raise ValueError(f"visual_pipeline {os.fspath(source)!r} is not a pipeline folder (no model_index.json)")
        source = OmniTalkerPipeline.from_pretrained(os.fspath(source))
        if device is not None:
            source = source.to(device)
    if not isinstance(source, OmniTalkerPipeline):
        raise ValueError(f"visual_pipeline must be an OmniTalkerPipeline or a folder / Hub id, got "
                         f"{type(source).__name__}")
    if "visual" not in branches_of(source):
        raise ValueError("the visual pipeline has no trained visual branch itself: pass one that does (e.g. the "
                         "bundled demo, weights/omnitalker-demo)")
    return source


def default_mode(pipe) -> str:
    """The mode a call to ``pipe`` without ``mode=`` runs in (``mode_for``)."""
    return mode_for(branches_of(pipe))


def folder_default_mode(folder) -> str | None:
    """The default mode of a saved pipeline folder, read from its json files without loading anything (None when
    it is not a local folder, e.g. a Hub id)."""
    import json

    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        return None
    trained = json.loads((folder / "model_index.json").read_text()).get("trained_branches") or BRANCHES
    config = folder / "transformer" / "config.json"
    visual_stream = json.loads(config.read_text()).get("visual_stream", True) if config.is_file() else True
    return mode_for([name for name in trained if name != "visual" or visual_stream])


def describe_mode(pipe, mode: str | None = None) -> str:
    """Which weights speak and which move, in a few words (printed by the CLI, shown by the app)."""
    mode = mode or default_mode(pipe)
    if mode != "cascade":
        return MODE_TEXT[mode]
    visual = getattr(pipe, "_visual_pipeline", None)
    source = pipe.config.get("visual_pipeline") or "the bundled demo"
    if visual is not None:
        source = getattr(visual, "name_or_path", None) or source
    return f"{MODE_TEXT['cascade']} {source}"


def build_voice_reference(audio, text=None, visual_dim: int = VISUAL_CODE_DIM, limits=None, headers_checked=False):
    """A voice-only reference for ``mode='audio'`` (no face: speech only): the voice sample's trimmed,
    loudness-normalised wave, its log-mel, zero visual codes (never used: the visual stream is absent).
    `headers_checked`: the file was checked against `limits` already (a pipeline call's plan)."""
    import torch

    from omnitalker.pipeline.limits import as_limits
    from omnitalker.pipeline.reference import OmniTalkerReference, load_voice, reference_mel

    if not headers_checked:
        as_limits(limits).check_inputs(reference_audio=audio)
    wave, _, gain = load_voice(audio, "reference_audio")
    mel = reference_mel(wave)  # n 100
    return OmniTalkerReference(wave=wave, mel=mel, codes=torch.zeros(len(mel), visual_dim), text=text,
                               identity=None, image=None, landmarks=None, gain=gain, static=True)
