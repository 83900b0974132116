"""Command line: text -> talking video, and lip-sync of a recording, with an OmniTalkerPipeline.

    omnitalker generate --text "Nice to meet you." --reference ref.mp4 --out out.mp4   # transcript by ASR
    omnitalker generate --text "..." --image face.png --voice sample.wav --reference-text "..." --out out.mp4
    omnitalker lipsync --image face.png --audio speech.wav --out out.mp4
    omnitalker generate --pipeline f5tts-v1 --text "..." --reference ref.mp4 --out out.mp4     # cascade
    omnitalker generate --pipeline f5tts-v1 --mode audio --text "..." --voice v.wav --out out.wav  # speech only
    python -m omnitalker generate ...          # the same

Output size: frames are scaled so their longer side is at most ``--max-side`` pixels (default 1024, never
upscaled; ``--max-side 0`` keeps the reference's own size). Inputs are checked against limits before any work
(``--max-pixels``, ``--max-seconds``, ``--max-audio-seconds``, ``--max-file-mb``, ``--max-text-length``;
``omnitalker.pipeline.limits``). The
video is rendered, watermarked and encoded a chunk at a time, so a long text costs time, not memory; progress
bars show the sampling (all chunks) and the rendering.

``--pipeline`` takes a local pipeline folder (``save_pretrained`` layout) or a Hub repo id; it defaults
to the bundled demo weights (``weights/omnitalker-demo`` next to the package). Every output carries the
visible "AI-generated" label and the invisible frame and audio watermarks.

Modes (``--mode``, ``omnitalker.pipeline.modes``): ``joint`` (one model speaks and moves; the default for pipelines with a
trained visual branch), ``cascade`` (speech from ``--pipeline``, the face lip-synced to it by
``--visual-pipeline``, default the bundled demo; the default for an audio-only pipeline such as a converted
F5-TTS, ``python -m omnitalker.convert.pipeline``) and ``audio`` (speech only, written as a .wav; ``--voice``
alone is a reference enough). The mode that runs is printed.

``--stream`` generates through ``OmniTalkerPipeline.stream`` with a short first chunk (about a second of speech,
``first_chunk_seconds``), writes each piece into the output as it is decoded and prints when the first was ready;
concatenated the pieces equal the whole call with that option, up to the differences ``omnitalker.pipeline.stream``
documents (the audio watermark and the reference's motion style per chunk). Without it the output is the whole call's.

Without ``--reference-text`` the reference speech is transcribed by the pipeline's speech recognizer (the
bundled offline Whisper tiny.en unless the pipeline or ``--asr`` names another: a faster-whisper size such
as ``small`` for Chinese, a folder, or ``none`` to require the typed transcript); the transcript used is
printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from omnitalker.flow.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from omnitalker.pipeline.chunking import DEFAULT_FIRST_CHUNK_SECONDS
from omnitalker.pipeline.limits import DEFAULT_MAX_SIDE, InputLimits, check_max_side
from omnitalker.pipeline.modes import MODES, default_mode, describe_mode
from omnitalker.render.choose import RENDERER_CHOICES_HELP, attach_renderer

DEFAULT_PIPELINE = Path(__file__).resolve().parents[2] / "weights" / "omnitalker-demo"
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")
AUDIO_SUFFIXES = (".wav", ".flac")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnitalker", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--pipeline", default=str(DEFAULT_PIPELINE),
                        help="pipeline folder or Hub repo id (default: the bundled demo weights)")
    common.add_argument("--reference", help="reference video of the person talking (1-10 s are used)")
    common.add_argument("--image", help="a photo of the person (instead of --reference)")
    common.add_argument("--out", required=True, help="output video (.mp4)")
    common.add_argument("--steps", type=int, default=None,
                        help=f"ODE sampling steps (default: the pipeline's own, its scheduler config; "
                             f"{DEFAULT_NUM_INFERENCE_STEPS} as in the paper unless the weights chose another)")
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    limits = InputLimits()
    common.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"longer side of the output video in pixels, never upscaled (default {DEFAULT_MAX_SIDE}; "
                        "0 = the reference's own size)")
    common.add_argument("--max-pixels", type=int, default=limits.max_pixels,
                        help=f"largest photo / video frame accepted, in pixels (default {limits.max_pixels:,})")
    common.add_argument("--max-seconds", type=float, default=limits.max_seconds,
                        help=f"longest reference video / voice file accepted, in seconds (default {limits.max_seconds:g})")
    common.add_argument("--max-audio-seconds", type=float, default=limits.max_audio_seconds,
                        help=f"longest speech to lip-sync, in seconds (default {limits.max_audio_seconds:g})")
    common.add_argument("--max-file-mb", type=float, default=limits.max_file_mb,
                        help=f"largest file accepted, in MB (default {limits.max_file_mb:g})")
    common.add_argument("--max-text-length", type=int, default=limits.max_text_length,
                        help=f"longest text accepted, in characters (default {limits.max_text_length:,})")
    common.add_argument("--visual-pipeline", help="cascade mode: the pipeline whose visual branch animates the face "
                        "(folder or Hub id; default: --pipeline's configured one, else the bundled demo)")
    common.add_argument("--renderer", default=None, help=f"what draws the face: {RENDERER_CHOICES_HELP}")
    common.add_argument("--stream", action="store_true",
                        help="generate chunk by chunk, the first about a second long, and print when it was ready "
                        "(the pieces are written as they come)")
    common.add_argument("--asr", help="speech recognizer for a missing --reference-text: 'default' (bundled "
                        "tiny.en, English), a faster-whisper size such as 'small', a folder, or 'none' "
                        "(default: the pipeline's own)")

    generate = commands.add_parser("generate", parents=[common], help="text -> speech + talking video")
    generate.add_argument("--text", required=True, help="what the person should say")
    generate.add_argument("--voice", help="voice sample to go with --image (or for a silent --reference)")
    generate.add_argument("--reference-text", help="transcript of the reference speech (default: recognised by --asr)")
    generate.add_argument("--speed", type=float, default=1.0, help="pace relative to the reference (default 1)")
    generate.add_argument("--duration", type=float, help="seconds to generate (default: from the text length)")
    generate.add_argument("--mode", choices=MODES, help="joint | cascade | audio (default: joint when the pipeline "
                          "has a trained visual branch, else cascade)")

    lipsync = commands.add_parser("lipsync", parents=[common], help="a recording -> talking video in sync")
    lipsync.add_argument("--audio", required=True, help="the speech to lip-sync (audio or video file)")
    lipsync.add_argument("--voice", help="voice sample of the person in --image (optional)")
    lipsync.add_argument("--text", help="transcript of --audio (optional)")
    lipsync.add_argument("--reference-text", help="transcript of the reference speech (optional)")
    return parser


def check_args(args: argparse.Namespace) -> None:
    speech_only = getattr(args, "mode", None) == "audio"
    if speech_only and args.reference is None and args.image is None and args.voice is None:
        raise ValueError("--mode audio needs a voice: give --voice sample.wav (or --reference ref.mp4)")
    if (args.reference is None) == (args.image is None) and not (speech_only and args.voice is not None):
        raise ValueError("give exactly one of --reference ref.mp4 or --image face.png")
    if args.command == "generate" and args.image is not None and args.voice is None:
        raise ValueError("--image needs a voice sample: add --voice sample.wav (or use --reference ref.mp4)")
    suffixes = AUDIO_SUFFIXES if speech_only else VIDEO_SUFFIXES
    if Path(args.out).suffix.lower() not in suffixes:
        kind = "an audio file (--mode audio)" if speech_only else "a video file"
        raise ValueError(f"--out must be {kind} ending in {', '.join(suffixes)}, got {args.out!r}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    check_max_side(max_side(args), "--max-side")


def max_side(args: argparse.Namespace) -> int | None:
    return None if args.max_side == 0 else args.max_side


def input_limits(args: argparse.Namespace) -> InputLimits:
    try:
        return InputLimits(max_pixels=args.max_pixels, max_seconds=args.max_seconds,
                           max_audio_seconds=args.max_audio_seconds, max_file_mb=args.max_file_mb,
                           max_text_length=args.max_text_length)
    except ValueError as error:  # name the flag, not the field
        raise ValueError(str(error).replace("InputLimits.", "--").replace("_", "-")) from error


def load_pipeline(name: str, device: str):
    """A local folder, or a Hub repo id; a clear error when the bundled demo weights are missing."""
    from omnitalker.pipeline import OmniTalkerPipeline

    path = Path(name)
    if path.resolve() == DEFAULT_PIPELINE and not path.is_dir():
        raise ValueError(
            f"the bundled demo weights are not there ({DEFAULT_PIPELINE}). Pass --pipeline PATH_OR_HUB_ID with "
            "a saved OmniTalkerPipeline, or build the demo weights first (see weights/README.md)."
        )
    looks_local = path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_local and not path.is_dir():
        raise ValueError(f"--pipeline {name!r} is not a pipeline folder (expected model_index.json inside it)")
    if looks_local and not (path / "model_index.json").is_file():
        raise ValueError(f"--pipeline {name!r} has no model_index.json: is it a saved OmniTalkerPipeline?")
    return OmniTalkerPipeline.from_pretrained(name).to(device)


def run(args: argparse.Namespace) -> Path:
    import torch

    from omnitalker.io.export import export_to_video

    check_args(args)
    limits = input_limits(args)
    limits.check_inputs(texts=[args.text] if args.text else None, reference_video=args.reference,
                        reference_image=args.image, reference_audio=args.voice,
                        audio=getattr(args, "audio", None))  # before loading anything
    if args.reference_text:
        limits.check_text(args.reference_text, "--reference-text")
    pipe = load_pipeline(args.pipeline, args.device)
    if args.asr:
        pipe.set_asr(args.asr)
    mode = getattr(args, "mode", None) or default_mode(pipe)
    if mode == "cascade" and args.visual_pipeline:
        pipe.set_visual_pipeline(args.visual_pipeline)
    if args.renderer and mode != "audio":
        attach_renderer(pipe, args.renderer, device=args.device)
    print(f"mode: {mode} ({describe_mode(pipe, mode)})")
    reference = pipe.prepare_reference(reference_video=args.reference, reference_image=args.image,
                                       reference_audio=args.voice, reference_text=args.reference_text,
                                       max_side=max_side(args), limits=limits)
    generator = torch.Generator("cpu").manual_seed(args.seed)
    common = dict(reference=reference, num_inference_steps=args.steps, generator=generator, max_side=max_side(args),
                  limits=limits, mode=mode)
    if args.command == "generate":
        common.update(speed=args.speed, duration=args.duration)
    else:
        common.update(audio=args.audio)
    if args.reference_text is None and reference.text is not None:
        print(f"reference transcript (speech recognition): {reference.text}")
    target = Path(args.out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if args.stream:
        return write_streamed(pipe.stream(args.text, first_chunk_seconds=DEFAULT_FIRST_CHUNK_SECONDS, **common),
                              target, mode)
    out = pipe(args.text, stream_frames=mode != "audio", **common)
    if mode == "audio":
        from omnitalker.io.audio import save_audio

        return save_audio(target, out.audio[0], out.sample_rate)  # atomic: never a half-written file
    export_to_video(out.frames[0], str(target), fps=int(out.fps), audio=out.audio[0], sample_rate=out.sample_rate)
    return target


def write_streamed(pieces, target: Path, mode: str) -> Path:
    """Write ``OmniTalkerPipeline.stream``'s pieces into `target` as they come (the video atomically: nothing is left
    after a failure) and say when the first was ready."""
    import numpy as np

    from omnitalker.io.export import VideoWriter

    started = time.perf_counter()
    writer, sound, unsent = None, [], []  # unsent: sound that came before the first frames
    try:
        for index, piece in enumerate(pieces):
            if index == 0:
                print(f"first chunk ready after {time.perf_counter() - started:.1f} s "
                      f"({len(piece.audio) / piece.sample_rate:.1f} s of speech)", flush=True)
            sound.append(piece.audio)
            unsent.append(piece.audio)
            if writer is None and piece.frames is not None and len(piece.frames):
                height, width = piece.frames.shape[1:3]
                writer = VideoWriter(target, width, height, int(piece.fps), piece.sample_rate)
            if writer is not None:
                writer.write(piece.frames if piece.frames is not None and len(piece.frames) else [],
                             np.concatenate(unsent))
                unsent = []
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    print(f"all chunks ready after {time.perf_counter() - started:.1f} s")
    if mode == "audio":
        from omnitalker.io.audio import save_audio

        return save_audio(target, np.concatenate(sound), piece.sample_rate)
    return Path(writer.close())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        target = run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"omnitalker {args.command}: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
