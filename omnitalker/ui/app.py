"""The OmniTalker Gradio showcase: build_demo() -> gr.Blocks with three tabs. Nothing loads at import.

    from omnitalker.ui.app import build_demo, launch
    demo = build_demo(pipe)                    # an OmniTalkerPipeline, a folder / Hub id, or None (bundled)
    launch(demo)                               # queue limits, upload limit, 0.0.0.0:7860 unless told otherwise

    python app.py                              # top-level launcher on the bundled demo weights

Tabs:
- Talk: a reference video (upload or webcam), or a photo + a voice sample; the reference transcript (optional:
  when empty, the offline speech recognizer fills it in and the box shows what it heard, editable); the
  text -> the video, playing while it is written (``omnitalker.ui.streaming``), then the mp4 to download, the
  speech alone, and plots (reference vs generated head pose, log-mels);
- Lip-sync: a photo or a clip + a recording -> the face speaking it (the pipeline's audio-driven mode);
- Learn flow matching: the same sampler on a 2-D toy (omnitalker/ui/learn.py).
Under the intro a line says which mode runs (``omnitalker.pipeline.modes``): "joint" (one transformer speaks and moves) or,
for a pipeline with only an audio branch such as a converted F5-TTS, "cascade" (its speech, then the face lip-synced
to it by ``visual_pipeline``, default the bundled demo).
Handlers are in omnitalker/ui/handlers.py (errors -> gr.Error, the per-request budget, per-session result
folders removed when the page closes).

Under load (``omnitalker.ui.serving``, each setting a Space variable): one generation at a time, a bounded queue
(more requests get gradio's "queue full"), each request stopped at a time limit. Every request is checked against
the budget before any work (text length, upload seconds / size / pixels; the OMNITALKER_* Space variables,
``omnitalker.pipeline.limits``) and renders at most OMNITALKER_MAX_SIDE (1024) px, so one request's memory is
bounded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from omnitalker.flow.guidance import (
    DEFAULT_AUDIO_STRENGTH,
    DEFAULT_TEXT_STRENGTH,
    DEFAULT_VISUAL_STRENGTH,
    MIN_STRENGTH,
)
from omnitalker.frontend.languages import SUPPORTED_LANGUAGES
from omnitalker.notices import DEMO_REAL_VOICE_NOTICE
from omnitalker.ui.handlers import DemoHandlers, app_limits
from omnitalker.ui.learn import build_learn_tab
from omnitalker.ui.serving import ServingSettings
from omnitalker.ui.streaming import streaming_available

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PIPELINE = REPO_ROOT / "weights" / "omnitalker-demo"
DEFAULT_EXAMPLES = REPO_ROOT / "examples"
MAX_STEPS = 64
MAX_GUIDANCE = 5.0  # slider ends; the strengths themselves are unbounded above (omnitalker/flow/guidance.py)
CACHE_CLEANUP = (3600, 3600)  # gradio's cache: every hour, delete files older than an hour
DEFAULT_PORT = 7860

INTRO = """
# OmniTalker
Type a sentence and a short reference of a person talking (a 1-10 s clip, or a photo plus a voice sample):
one flow-matching transformer generates the speech *and* the head and face motion in the reference's style.
Every output carries a visible "AI-generated" label and invisible audio and video watermarks.
"""
TRANSCRIPT_PLACEHOLDER = ("Optional: leave empty and it is recognised from the reference speech (English; "
                          "type it for other languages)")
WATERMARK_NOTICE = ("Outputs are watermarked: a visible *AI-generated* label plus imperceptible marks in the "
                    "frames and in the audio (paper appendix D). Do not use someone's likeness or voice "
                    "without their consent.")


def _load_examples(folder: Path) -> dict:
    """examples/examples.json with absolute paths (made by scripts/make_examples.py); {} if absent."""
    manifest = folder / "examples.json"
    if not manifest.is_file():
        return {}
    entries = json.loads(manifest.read_text())
    media_keys = ("video", "image", "voice", "audio")
    return {tab: [{key: str(folder / value) if key in media_keys else value for key, value in entry.items()}
                  for entry in items] for tab, items in entries.items()}


def build_demo(
    pipeline=None,
    examples_dir: str | os.PathLike | None = DEFAULT_EXAMPLES,
    gpu: Callable[[Callable], Callable] | None = None,
    output_root: str | os.PathLike | None = None,
    limits=None,
    max_side=None,
    visual_pipeline=None,
    serving: ServingSettings | None = None,
    stream: bool | None = None,
    warm_up: bool = False,
) -> gr.Blocks:
    """The showcase as a gr.Blocks (not launched).

    Args:
        pipeline: an ``OmniTalkerPipeline``; or a local folder / Hub id, loaded on the first request;
            None = the bundled demo weights (``weights/omnitalker-demo``).
        examples_dir: folder with examples.json and its media (None: no examples).
        gpu: decorator for the generating handlers (``spaces.GPU`` on a ZeroGPU Space).
        output_root: folder for the per-session results (default: inside gradio's cache, served in place).
        limits: the per-request budget, an ``omnitalker.pipeline.limits.InputLimits`` (default: ``app_limits()``, the
            demo's defaults with the OMNITALKER_* variables applied).
        max_side: longer side of the output video (default: OMNITALKER_MAX_SIDE or 1024).
        visual_pipeline: for a pipeline with only an audio branch (cascade mode), the pipeline / folder / Hub id
            whose visual branch animates the face (None: the pipeline's configured one, else the bundled demo).
        serving: queue size, concurrency and the per-request time limit (default: ``ServingSettings.from_env()``).
        stream: play the video while it is written (default: when ffmpeg and ffprobe are installed, which gradio's
            streaming player needs); False shows it when complete.
        warm_up: load the pipeline and analyse the examples' references in a background thread now
            (``DemoHandlers.warm_up``; ``demo.omnitalker_warm_up`` is the thread), so the first visitor's click is
            as quick as the next one's. ``python app.py`` does.
    """
    serving = ServingSettings.from_env() if serving is None else serving
    options = {} if max_side is None else {"max_side": max_side}
    handlers = DemoHandlers(DEFAULT_PIPELINE if pipeline is None else pipeline, output_root=output_root,
                            limits=limits, visual_pipeline=visual_pipeline,
                            max_request_seconds=serving.max_request_seconds, **options)
    stream = streaming_available() if stream is None else stream
    if stream:  # the video plays while it is written
        talk, lipsync = handlers.talk_stream, handlers.lipsync_stream
    else:
        talk, lipsync = handlers.talk_whole, handlers.lipsync_whole
    if gpu is not None:
        talk, lipsync = gpu(talk), gpu(lipsync)
    examples = _load_examples(Path(examples_dir)) if examples_dir is not None else {}

    with gr.Blocks(title="OmniTalker", delete_cache=CACHE_CLEANUP) as demo:
        gr.Markdown(INTRO)
        gr.Markdown(handlers.mode_notice(), elem_id="mode")
        with gr.Tabs():
            with gr.Tab("Talk", id="talk"):
                _talk_tab(talk, examples, handlers.limits, stream, handlers.steps_default(),
                          handlers.guidance_defaults(), prefetch=handlers.prefetch_reference,
                          voice_notice=DEMO_REAL_VOICE_NOTICE if _synthetic_voices_only(pipeline) else None)
            with gr.Tab("Lip-sync", id="lipsync"):
                _lipsync_tab(lipsync, examples, handlers.limits, stream, handlers.steps_default())
            with gr.Tab("Learn flow matching", id="learn"):
                build_learn_tab()
        demo.unload(handlers.end_session)  # the page closed: its results go
    demo.queue(max_size=serving.queue_size, default_concurrency_limit=serving.concurrency)
    demo.omnitalker_limits = handlers.limits  # launch() sets gradio's upload limit from it
    demo.omnitalker_warm_up = None
    if warm_up:
        demo.omnitalker_warm_up = threading.Thread(target=handlers.warm_up, args=(_example_references(examples),),
                                                   name="omnitalker-warm-up", daemon=True)
        demo.omnitalker_warm_up.start()
    return demo


def _example_references(examples: dict) -> list[dict]:
    """The Talk tab's example references as ``DemoHandlers.prefetch_reference`` takes them."""
    return ([{"reference_video": e["video"]} for e in examples.get("talk_video", [])]
            + [{"reference_image": e["image"], "reference_audio": e["voice"]} for e in examples.get("talk_photo", [])])


def _seconds(limit) -> str:
    return "" if limit is None else f"; at most {limit:g} s"


def _synthetic_voices_only(pipeline) -> bool:
    """True for the bundled demo, which has heard only synthetic espeak-ng voices (its voice upload says so)."""
    source = DEFAULT_PIPELINE if pipeline is None else getattr(pipeline, "name_or_path", pipeline)
    return Path(str(source)).name == Path(DEFAULT_PIPELINE).name


def _talk_tab(talk: Callable, examples: dict, limits, stream: bool, default_steps: int,
              guidance=(DEFAULT_TEXT_STRENGTH, DEFAULT_AUDIO_STRENGTH, DEFAULT_VISUAL_STRENGTH),
              voice_notice: str | None = None, prefetch: Callable | None = None) -> None:
    with gr.Row():
        with gr.Column():
            with gr.Tabs():
                with gr.Tab("Reference video"):
                    reference_video = gr.Video(label=f"Reference video (1-10 s used{_seconds(limits.max_seconds)})",
                                               sources=["upload", "webcam"], elem_id="reference-video")
                with gr.Tab("Photo + voice"):
                    reference_image = gr.Image(label="Photo", type="filepath", sources=["upload", "webcam"],
                                               image_mode=None, elem_id="reference-image")  # file as uploaded
                    reference_audio = gr.Audio(label="Voice sample (1-10 s)", type="filepath",
                                               sources=["upload", "microphone"], elem_id="reference-audio")
                    if voice_notice:
                        gr.Markdown(voice_notice, elem_id="voice-notice")
            reference_text = gr.Textbox(label="Reference transcript (what is said in the reference)", lines=2,
                                        placeholder=TRANSCRIPT_PLACEHOLDER, elem_id="reference-text")
            length = "" if limits.max_text_length is None else f" (at most {limits.max_text_length:,} characters)"
            text = gr.Textbox(label=f"Text to speak{length}", lines=3, elem_id="text",
                              info=f"In {' or '.join(SUPPORTED_LANGUAGES.values())}: other languages are refused; "
                              "emoji are left out.")
            with gr.Accordion("Advanced settings", open=False):
                steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Sampling steps",
                                  elem_id="steps")
                with gr.Row():
                    guidance_text = gr.Slider(0, MAX_GUIDANCE, value=guidance[0], step=0.1, label="Guidance: text")
                    # below 0 a prompt condition weakens (towards the prediction without it)
                    guidance_audio = gr.Slider(MIN_STRENGTH, MAX_GUIDANCE, value=guidance[1], step=0.1,
                                               label="Guidance: voice (< 0: less of it)")
                    guidance_visual = gr.Slider(MIN_STRENGTH, MAX_GUIDANCE, value=guidance[2], step=0.1,
                                                label="Guidance: motion")
                speed = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Speed (1 = the reference's pace)")
                seed = gr.Number(0, precision=0, label="Seed")
                gr.Markdown(WATERMARK_NOTICE)
            generate = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column():
            video = gr.Video(label="Talking video", autoplay=True, streaming=stream, elem_id="output-video")
            download = gr.File(label="Download the mp4 (when the video is complete)", elem_id="output-file")
            audio = gr.Audio(label="Speech only", type="filepath")
            pose_plot = gr.Plot(label="Head pose: reference vs generated")
            mel_plot = gr.Plot(label="Log-mel: reference vs generated")
    inputs = [reference_video, reference_image, reference_audio, reference_text, text, steps, guidance_text,
              guidance_audio, guidance_visual, speed, seed]
    generate.click(talk, inputs, [video, download, audio, pose_plot, mel_plot, reference_text], api_name="talk")
    if prefetch is not None:  # the reference is analysed while the text is typed (DemoHandlers.prefetch_reference)
        for source in (reference_video, reference_image, reference_audio):
            source.change(prefetch, [reference_video, reference_image, reference_audio], None, api_visibility="private",
                          show_progress="hidden", trigger_mode="always_last", concurrency_limit=1,
                          concurrency_id="prefetch")
    if examples.get("talk_video"):
        gr.Examples([[e["video"], e["reference_text"], e["text"]] for e in examples["talk_video"]],
                    [reference_video, reference_text, text], label="Example: a reference clip",
                    cache_examples=False)
    if examples.get("talk_photo"):
        gr.Examples([[e["image"], e["voice"], e["reference_text"], e["text"]] for e in examples["talk_photo"]],
                    [reference_image, reference_audio, reference_text, text], label="Example: photo + voice",
                    cache_examples=False)


def _lipsync_tab(lipsync: Callable, examples: dict, limits, stream: bool, default_steps: int) -> None:
    gr.Markdown("Animate a face with any recording: the model generates only the motion (audio-driven mode).")
    with gr.Row():
        with gr.Column():
            with gr.Tabs():
                with gr.Tab("Photo"):
                    image = gr.Image(label="Photo", type="filepath", sources=["upload", "webcam"], image_mode=None)
                with gr.Tab("Video"):
                    clip = gr.Video(label="Reference clip", sources=["upload", "webcam"])
            at_most = "" if limits.max_audio_seconds is None else f" (at most {limits.max_audio_seconds:g} s)"
            speech = gr.Audio(label=f"Speech to lip-sync{at_most}", type="filepath",
                              sources=["upload", "microphone"])
            with gr.Accordion("Advanced settings", open=False):
                steps = gr.Slider(1, MAX_STEPS, value=default_steps, step=1, label="Sampling steps")
                seed = gr.Number(0, precision=0, label="Seed")
                gr.Markdown(WATERMARK_NOTICE)
            run = gr.Button("Lip-sync", variant="primary")
        with gr.Column():
            video = gr.Video(label="Lip-synced video", autoplay=True, streaming=stream, elem_id="lipsync-video")
            download = gr.File(label="Download the mp4 (when the video is complete)", elem_id="lipsync-file")
    run.click(lipsync, [image, clip, speech, steps, seed], [video, download], api_name="lipsync")
    if examples.get("lipsync"):
        gr.Examples([[e["image"], e["audio"]] for e in examples["lipsync"]], [image, speech],
                    label="Example: photo + recording", cache_examples=False)


def launch(demo: gr.Blocks, server_name: str | None = None, server_port: int | None = None, **kwargs):
    """Launch with the demo's upload limit (its limits' max_file_mb, OMNITALKER_MAX_FILE_MB; gradio refuses
    larger uploads before they reach a handler); host/port from GRADIO_SERVER_NAME/PORT or 0.0.0.0:7860."""
    server_name = server_name or os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0")
    if server_port is None:
        server_port = int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT))
    limits = getattr(demo, "omnitalker_limits", None) or app_limits()
    if limits.max_file_mb is not None:
        kwargs.setdefault("max_file_size", f"{limits.max_file_mb:g}mb")
    return demo.launch(server_name=server_name, server_port=server_port, **kwargs)
