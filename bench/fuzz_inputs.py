"""Every input a person can type or upload, through the pipeline, the app's handlers and the CLI.

Each case is a text and / or media files made here from the repository's own examples (and images that ship
inside the scikit-image wheel); ``--faces DIR`` adds the portraits of a local folder (never copied). Each runs
through up to three paths, each bounded in time:
- ``pipeline``: ``OmniTalkerPipeline.__call__`` with the reference arguments (an output, or a ValueError);
- ``app``: ``DemoHandlers.talk`` / ``lipsync`` as the page calls them (an output, or a gr.Error other than the
  generic "something went wrong");
- ``cli``: ``omnitalker generate`` / ``lipsync`` in-process (exit 0 with a playable file at ``--out``, or exit 2
  with the message, and then nothing at ``--out`` and no temporary file beside it).
Anything else is a crash; a case over ``--timeout`` seconds is a hang. Unsupported text must never give an
output. Every refusal message is checked for naming an input and a fix (a verb such as "use", "pass", "type").

    PYTHONPATH=. python bench/fuzz_inputs.py                        # all cases -> bench/results/fuzz_inputs.json
    PYTHONPATH=. python bench/fuzz_inputs.py --groups text --paths pipeline --limit 40
    PYTHONPATH=. python bench/fuzz_inputs.py --list                 # the cases, without running them
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import time
import unicodedata
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import regex

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"
PIPELINE = ROOT / "weights" / "omnitalker-demo"
RESULTS = ROOT / "bench" / "results" / "fuzz_inputs.json"

SAY = "A photo and a short recording are enough to make me speak."
VOICE_TEXT = "Good morning. This is my voice, recorded for the demo."
CLIP_TEXT = "Hello, I am an astronaut. I like to talk about the stars."
DEFAULT_STEPS = 4  # robustness, not quality: few sampling steps keep the run short
DEFAULT_TIMEOUT = 180.0  # seconds per case and path
LATIN = regex.compile(r"\p{Script=Latin}")
SCRIPT_SAMPLE_LETTERS = 6  # letters taken from each Unicode script found
PATHS = ("pipeline", "app", "cli")
GROUPS = ("text", "video", "voice", "image", "lipsync")
# A refusal must say what to do: one of these verbs (or "add") in its message.
FIX_WORDS = re.compile(r"\b(use|pass|type|add|upload|give|remove|record|crop|choose|convert|shorten|split|re-?encode|"
                       r"try|set|export|load|rephrase|make|speak|install|trim|clear|check)\b", re.I)
INPUT_WORDS = re.compile(r"\b(text|transcript|photo|image|picture|video|clip|voice|audio|speech|recording|reference|"
                         r"file|face|sample|--[a-z-]+)\b", re.I)


@dataclass(frozen=True)
class Case:
    """One input: ``expect`` is "output", "refusal" or "either" (both are correct answers)."""

    name: str
    group: str
    expect: str
    text: str | None = SAY
    video: str | None = None
    image: str | None = None
    voice: str | None = None
    audio: str | None = None  # speech to lip-sync
    reference_text: str | None = VOICE_TEXT
    paths: tuple[str, ...] = PATHS


@dataclass
class Outcome:
    case: str
    group: str
    path: str
    expect: str
    outcome: str  # output | refusal | crash | hang
    message: str = ""
    seconds: float = 0.0
    leftovers: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ text cases


def script_samples() -> dict[str, str]:
    """A few letters of every script with letters in Unicode (by the first word of their names)."""
    samples: dict[str, str] = {}
    for code in range(0x80, 0x20000):
        char = chr(code)
        if not unicodedata.category(char).startswith("L"):
            continue
        if LATIN.match(unicodedata.normalize("NFKC", char)):  # a compatibility form of a Latin letter (ℍ, ª, ℏ)
            continue
        name = unicodedata.name(char, "")
        script = name.split(" ")[0]
        if not script or script in ("LATIN", "CJK", "FULLWIDTH", "HALFWIDTH", "MATHEMATICAL", "MODIFIER"):
            continue
        if len(samples.get(script, "")) < SCRIPT_SAMPLE_LETTERS:
            samples[script] = samples.get(script, "") + char
    return samples


def text_cases() -> list[Case]:
    photo = dict(image=str(EXAMPLES / "astronaut.png"), voice=str(EXAMPLES / "voice.wav"))
    cases: list[Case] = []

    def add(name: str, text, expect: str, paths=PATHS):
        cases.append(Case(f"text/{name}", "text", expect, text=text, paths=paths, **photo))

    for script, letters in script_samples().items():  # every other script: refused
        add(f"script-{script.lower()}", f"{letters} {letters[::-1]}", "refusal")
    for name, text in {
        "russian": "Привет, как дела?", "japanese": "こんにちは、元気ですか", "korean": "안녕하세요 반갑습니다",
        "arabic": "مرحبا، كيف حالك؟", "hebrew": "שלום, מה שלומך?", "hindi": "नमस्ते, आप कैसे हैं?",
        "thai": "สวัสดีครับ", "greek": "Καλημέρα σας", "mixed-en-ru": "Hello, Привет, how are you?",
        "mixed-zh-ja": "你好，こんにちは", "mixed-en-ko": "I said 안녕 to her", "ipa": "ʃɪp ənd ʃiːp",
        "rtl-mark-arabic": "\u200fمرحبا\u200f", "greek-math": "α + β = γ", "cyrillic-lookalike": "Неllo wоrld",
    }.items():
        add(name, text, "refusal")
    for name, text in {
        "one-letter": "a", "one-chinese": "好", "one-digit": "7", "word": "Hello", "chinese": "今天天气很好，我们去公园散步吧。",
        "mixed-en-zh": "我们 meet at the park 好吗", "digits": "1234567890", "date": "On 12/05/2026 at 3:30 pm.",
        "iso-date": "The deadline is 2026-12-06T17:00Z.", "money": "It costs $5.50, €3 or £2.", "percent": "Growth was 12.5% in Q3.",
        "url": "Visit https://example.org/path?q=1 today.", "email": "Write to someone@example.com please.",
        "phone": "Call +1 (555) 123-4567.", "abbreviations": "Dr. Smith met Mr. Jones at 10 a.m. on St. Patrick's Day.",
        "acronyms": "NASA, FBI and the UN met at the WHO.", "ordinals": "He came 1st, she came 2nd, I came 23rd.",
        "roman": "Chapter XIV of Henry VIII.", "fractions": "Add ½ cup and ¾ spoon.", "temperature": "It is 20°C or 68°F.",
        "math": "2 + 2 = 4 and 3 × 3 = 9.", "hashtag": "#HappyFriday @friend", "code": "print('hello world')",
        "quotes": "\u201cQuoted\u201d and \u2018single\u2019 text.", "ellipsis": "Well… I don't know.",
        "dashes": "Yes — no — maybe – ok.", "parentheses": "This (and that) [and more] {too}.",
        "accents": "Café, naïve, Müller, jalapeño, Zoë.", "extended-latin": "Dvořák and Łódź in Tiếng Việt.",
        "german": "Die Straße ist groß.", "french": "Ça va très bien, merci.", "spanish": "¿Dónde está la biblioteca?",
        "fullwidth": "Ｈｅｌｌｏ ｗｏｒｌｄ １２３", "ligature": "The ﬁrst ﬂoor.", "superscript": "E = mc² and x³.",
        "circled": "Steps ① and ②.", "all-caps": "THIS IS VERY IMPORTANT!", "no-spaces": "ThisIsAllOneLongCamelCaseWord",
        "repeated-letter": "Noooooooooooooooooooooooo!", "repeated-word": "go " * 30, "punct-heavy": "Hello!!! Really??? Yes...",
        "emoji-mixed": "I love it 😀👍🏽 so much ❤️", "emoji-flag": "Go team 🇺🇸!", "emoji-zwj": "Family 👨\u200d👩\u200d👧 day",
        "zero-width": "Hel\u200blo wor\u200dld", "bom": "\ufeffHello there", "rtl-override": "Hello \u202eworld\u202c!",
        "control-chars": "Hello\x00\x07 world\x1b[31m", "tabs-newlines": "Hello\tthere\n\nGeneral\r\nKenobi",
        "nbsp": "Hello\u00a0world\u2003again", "combining-zalgo": "H\u0338\u0322e\u0334llo", "decomposed": "Cafe\u0301 au lait",
        "private-use": "Hello \ue000 there", "variation-selector": "Hello \u2764\ufe0f there", "line-separator": "One\u2028two",
        "html": "<b>bold</b> &amp; <i>italic</i>", "markdown": "**Bold** and _italic_ text", "json": '{"key": "value"}',
        "chinese-punct": "你好！今天怎么样？", "chinese-numbers": "我有3个苹果和12本书。", "traditional": "謝謝你，我們明天見。",
        "kanji-only": "東京", "pinyin": "ni3 hao3", "long-word": "Pneumonoultramicroscopicsilicovolcanoconiosis",
        "sentence-500": ("The quick brown fox jumps over the lazy dog. " * 12)[:500],
        "sentence-1000": ("Speech starts with sound, cut into small frames, painted by a network. " * 15)[:1000],
        "chinese-300": ("我们今天去公园散步，天气很好。" * 20)[:300],
    }.items():
        add(name, text, "output")
    for name, text in {
        "empty": "", "spaces": "     ", "newlines": "\n\n\t", "punct-only": "?!...", "emoji-only": "😀😀👍",
        "zero-width-only": "\u200b\u200c\u200d", "symbols-only": "★ ♥ ✓", "private-use-only": "\ue000\ue001",
        "dingbats": "✂✈✉", "box-drawing": "┌─┐└─┘", "braille": "⠓⠑⠇⠇⠕", "musical": "♪♫",
    }.items():
        add(name, text, "refusal")
    add("over-app-limit", "word " * 260, "either")  # 1,300 characters: the Space refuses, the pipeline speaks
    for name, value in {"none": None, "int": 123, "bytes": b"hello", "list-mixed": ["hello", 1]}.items():
        add(f"type-{name}", value, "refusal", paths=("pipeline",))
    return cases


# ----------------------------------------------------------------------------------------------- media cases


def _write_video(path: Path, frames: list[np.ndarray], fps: float, wave: np.ndarray | None = None,
                 sample_rate: int = 24000, codec: str = "libx264", rotate: int | None = None, audio_codec="aac"):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=round(fps) if fps >= 1 else fps)
        stream.width, stream.height = frames[0].shape[1] // 2 * 2, frames[0].shape[0] // 2 * 2
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if rotate is not None:
            stream.metadata["rotate"] = str(rotate)
        audio = None
        if wave is not None:
            audio = container.add_stream(audio_codec, rate=sample_rate)
            audio.layout = "mono"
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(frame[: stream.height, : stream.width], format="rgb24")
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            samples = wave.astype(np.float32)[None]
            fmt = "fltp" if audio_codec in ("aac", "libopus", "libvorbis") else "s16"
            block = 1024
            for start in range(0, samples.shape[1], block):
                chunk = samples[:, start : start + block]
                if fmt == "s16":
                    chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout="mono")
                frame.sample_rate = sample_rate
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)


def _write_audio(path: Path, wave: np.ndarray, sample_rate: int, codec: str | None = None, fmt: str = "fltp",
                 layout: str = "mono"):
    """Any container / codec through PyAV (mp3, ogg, opus, m4a, flac, webm)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.layout = layout
        channels = 2 if layout == "stereo" else 1
        samples = np.repeat(wave.astype(np.float32)[None], channels, 0)
        block = 1152
        for start in range(0, samples.shape[1], block):
            chunk = samples[:, start : start + block]
            if fmt == "s16":
                chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
            elif fmt == "s16p":
                chunk = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)
            elif fmt == "flt":
                chunk = chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout=layout)
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _clip_frames_and_wave():
    from omnitalker.io.video import read_video

    clip = read_video(str(EXAMPLES / "astronaut_talking.mp4"), sample_rate=24000)
    return [np.asarray(frame) for frame in clip.frames], float(clip.fps), clip.audio


def media_cases(workdir: Path, faces: Path | None = None) -> list[Case]:
    """Write every media input into ``workdir`` once and return the cases that use them."""
    import soundfile
    from PIL import Image
    from skimage import data

    from omnitalker.io.audio import resample

    workdir.mkdir(parents=True, exist_ok=True)
    w = lambda name: workdir / name  # noqa: E731
    voice, sr = soundfile.read(str(EXAMPLES / "voice.wav"), dtype="float32")
    speech, _ = soundfile.read(str(EXAMPLES / "driving_speech.wav"), dtype="float32")
    astronaut = np.asarray(Image.open(EXAMPLES / "astronaut.png").convert("RGB"))
    frames, fps, clip_wave = _clip_frames_and_wave()
    rng = np.random.default_rng(0)
    cases: list[Case] = []
    clip = str(EXAMPLES / "astronaut_talking.mp4")

    def video_case(name, path, expect, text=SAY, reference_text=CLIP_TEXT, voice_path=None):
        cases.append(Case(f"video/{name}", "video", expect, text=text, video=str(path), voice=voice_path,
                          reference_text=reference_text))

    def voice_case(name, path, expect):
        cases.append(Case(f"voice/{name}", "voice", expect, image=str(EXAMPLES / "astronaut.png"), voice=str(path)))

    def image_case(name, path, expect):
        cases.append(Case(f"image/{name}", "image", expect, image=str(path), voice=str(EXAMPLES / "voice.wav")))

    def lipsync_case(name, path, expect, image=None):
        cases.append(Case(f"lipsync/{name}", "lipsync", expect, text=None, reference_text=None,
                          image=str(image or EXAMPLES / "astronaut.png"), audio=str(path)))

    # ---- reference videos
    raw = (EXAMPLES / "astronaut_talking.mp4").read_bytes()
    video_case("example", clip, "output")
    for fraction in (0.5, 0.1):
        w(f"truncated-{fraction}.mp4").write_bytes(raw[: int(len(raw) * fraction)])
        video_case(f"truncated-{fraction}", w(f"truncated-{fraction}.mp4"), "either")
    w("first-kb.mp4").write_bytes(raw[:1024])
    video_case("first-kilobyte", w("first-kb.mp4"), "refusal")
    w("empty.mp4").write_bytes(b"")
    video_case("zero-bytes", w("empty.mp4"), "refusal")
    w("random.mp4").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    video_case("random-bytes", w("random.mp4"), "refusal")
    shutil.copy(EXAMPLES / "astronaut.png", w("png-named.mp4"))
    video_case("png-named-mp4", w("png-named.mp4"), "refusal")
    shutil.copy(EXAMPLES / "voice.wav", w("wav-named.mp4"))
    video_case("wav-named-mp4", w("wav-named.mp4"), "refusal")
    w("text.mp4").write_text("not a video\n")
    video_case("text-named-mp4", w("text.mp4"), "refusal")
    video_case("missing-file", w("does-not-exist.mp4"), "refusal")
    _write_audio(w("audio-only.mp4"), voice, sr, "aac")
    video_case("audio-only-mp4", w("audio-only.mp4"), "refusal")
    _write_video(w("video-only.mp4"), frames, fps)
    video_case("video-only-no-voice", w("video-only.mp4"), "refusal")
    video_case("video-only-with-voice", w("video-only.mp4"), "output", reference_text=VOICE_TEXT,
               voice_path=str(EXAMPLES / "voice.wav"))
    _write_video(w("one-frame.mp4"), frames[:1], fps, clip_wave[:960])
    video_case("one-frame", w("one-frame.mp4"), "refusal")
    _write_video(w("half-second.mp4"), frames[:12], fps, clip_wave[: sr // 2])
    video_case("half-second", w("half-second.mp4"), "refusal")
    _write_video(w("120fps.mp4"), [f for f in frames for _ in range(5)][:400], 120, clip_wave)
    video_case("120-fps", w("120fps.mp4"), "output")
    _write_video(w("5fps.mp4"), frames[::5], 5, clip_wave)
    video_case("5-fps", w("5fps.mp4"), "output")
    _write_video(w("rotated-90.mp4"), [np.rot90(f).copy() for f in frames], fps, clip_wave, rotate=90)
    video_case("phone-rotated-90", w("rotated-90.mp4"), "output")
    _write_video(w("upside-down.mp4"), [f[::-1].copy() for f in frames], fps, clip_wave)
    video_case("upside-down", w("upside-down.mp4"), "either")
    portrait = [np.pad(f, ((128, 128), (0, 0), (0, 0))) for f in frames]
    _write_video(w("vertical.mp4"), portrait, fps, clip_wave)
    video_case("vertical-9x16", w("vertical.mp4"), "output")
    _write_video(w("tiny.mp4"), [f[::4, ::4].copy() for f in frames], fps, clip_wave)
    video_case("tiny-64px", w("tiny.mp4"), "refusal")
    _write_video(w("grey.mp4"), [np.repeat(f.mean(-1, keepdims=True), 3, -1).astype(np.uint8) for f in frames], fps,
                 clip_wave)
    video_case("greyscale", w("grey.mp4"), "output")
    _write_video(w("two-faces.mp4"), [np.concatenate([f, f[:, ::-1]], 1) for f in frames], fps, clip_wave)
    video_case("two-faces", w("two-faces.mp4"), "output")
    blank = [np.full_like(frames[0], 90 + i % 20) for i in range(len(frames))]
    _write_video(w("no-face.mp4"), blank, fps, clip_wave)
    video_case("no-face", w("no-face.mp4"), "refusal")
    _write_video(w("silent.mp4"), frames, fps, np.zeros_like(clip_wave))
    video_case("silent-audio", w("silent.mp4"), "refusal")
    _write_video(w("long.mp4"), frames * 6, fps, np.tile(clip_wave, 6))
    video_case("20-seconds", w("long.mp4"), "output")
    for ext, codec, audio_codec in (("webm", "libvpx-vp9", "libopus"), ("mkv", "libx264", "aac"),
                                    ("mov", "libx264", "aac"), ("avi", "mjpeg", "pcm_s16le")):
        path = w(f"clip.{ext}")
        try:
            rate = 48000 if audio_codec == "libopus" else 24000  # Opus runs at 48 kHz only
            _write_video(path, frames, fps, resample(clip_wave, 24000, rate), codec=codec, audio_codec=audio_codec,
                         sample_rate=rate)
        except Exception as error:  # an encoder this FFmpeg build lacks: the case is skipped, not faked
            print(f"skip clip.{ext}: {error}", file=sys.stderr)
            continue
        video_case(f"container-{ext}", path, "output")
    gif = [Image.fromarray(f) for f in frames[::2]]
    gif[0].save(w("animated.gif"), save_all=True, append_images=gif[1:], duration=80, loop=0)
    video_case("animated-gif", w("animated.gif"), "either")
    video_case("russian-transcript", clip, "refusal", reference_text="Привет, я космонавт.")
    video_case("emoji-transcript", clip, "output", reference_text=CLIP_TEXT + " 😀")

    # ---- voice samples (with the example photo)
    voice_case("example", EXAMPLES / "voice.wav", "output")
    for rate in (8000, 16000, 44100, 48000, 96000):
        soundfile.write(str(w(f"voice-{rate}.wav")), resample(voice, sr, rate), rate)
        voice_case(f"wav-{rate}hz", w(f"voice-{rate}.wav"), "output")
    soundfile.write(str(w("stereo.wav")), np.stack([voice, voice * 0.5], 1), sr)
    voice_case("wav-stereo", w("stereo.wav"), "output")
    for subtype in ("PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"):
        soundfile.write(str(w(f"voice-{subtype}.wav")), voice, sr, subtype=subtype)
        voice_case(f"wav-{subtype.lower()}", w(f"voice-{subtype}.wav"), "output")
    soundfile.write(str(w("voice.flac")), voice, sr)
    voice_case("flac", w("voice.flac"), "output")
    soundfile.write(str(w("voice.ogg")), voice, sr, format="OGG", subtype="VORBIS")
    voice_case("ogg-vorbis", w("voice.ogg"), "output")
    for ext, codec, fmt, rate in (("mp3", "mp3", "fltp", 24000), ("m4a", "aac", "fltp", 24000),
                                  ("opus", "libopus", "flt", 48000), ("webm", "libopus", "flt", 48000)):
        path = w(f"voice.{ext}")
        try:
            _write_audio(path, resample(voice, sr, rate), rate, codec, fmt)
        except Exception as error:
            print(f"skip voice.{ext}: {error}", file=sys.stderr)
            continue
        voice_case(ext, path, "output")
    soundfile.write(str(w("silence.wav")), np.zeros(sr * 3, np.float32), sr)
    voice_case("silence", w("silence.wav"), "refusal")
    soundfile.write(str(w("noise.wav")), rng.normal(0, 0.2, sr * 3).astype(np.float32), sr)
    voice_case("white-noise", w("noise.wav"), "either")
    t = np.arange(sr * 4) / sr
    music = sum(0.15 * np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * 2 * t) > 0) for f in (261.6, 329.6, 392.0))
    soundfile.write(str(w("music.wav")), music.astype(np.float32), sr)
    voice_case("music", w("music.wav"), "either")
    soundfile.write(str(w("clipped.wav")), np.clip(voice * 20, -1, 1), sr)
    voice_case("clipping", w("clipped.wav"), "output")
    soundfile.write(str(w("quiet.wav")), voice * 1e-3, sr)
    voice_case("very-quiet", w("quiet.wav"), "either")
    soundfile.write(str(w("dc.wav")), np.clip(voice + 0.5, -1, 1), sr)
    voice_case("dc-offset", w("dc.wav"), "output")
    soundfile.write(str(w("short.wav")), voice[: int(0.3 * sr)], sr)
    voice_case("0.3-seconds", w("short.wav"), "refusal")
    soundfile.write(str(w("long-voice.wav")), np.tile(voice, 10), sr)
    voice_case("32-seconds", w("long-voice.wav"), "output")
    raw_voice = (EXAMPLES / "voice.wav").read_bytes()
    w("voice-truncated.wav").write_bytes(raw_voice[: len(raw_voice) // 3])
    voice_case("truncated-wav", w("voice-truncated.wav"), "either")
    w("header-only.wav").write_bytes(raw_voice[:44])
    voice_case("header-only-wav", w("header-only.wav"), "refusal")
    shutil.copy(EXAMPLES / "voice.wav", w("wav-named.mp3"))
    voice_case("wav-named-mp3", w("wav-named.mp3"), "output")
    voice_case("image-as-voice", EXAMPLES / "astronaut.png", "refusal")
    voice_case("video-as-voice", clip, "output")
    voice_case("zero-bytes", w("empty.mp4"), "refusal")
    voice_case("random-bytes", w("random.mp4"), "refusal")
    soundfile.write(str(w("voice.aiff")), voice, sr, format="AIFF")
    voice_case("aiff", w("voice.aiff"), "output")

    # ---- photos (with the example voice)
    image = Image.fromarray(astronaut)
    image_case("example-png", EXAMPLES / "astronaut.png", "output")
    for mode, ext in (("RGBA", "png"), ("L", "png"), ("P", "png"), ("LA", "png"), ("CMYK", "jpg"), ("RGB", "webp"),
                      ("RGB", "bmp"), ("RGB", "tiff"), ("1", "png"), ("RGB", "jpg")):
        path = w(f"photo-{mode}.{ext}")
        image.convert(mode).save(path)
        image_case(f"{mode.lower()}-{ext}", path, "either" if mode == "1" else "output")
    Image.fromarray((astronaut.mean(-1) * 257).astype(np.uint16)).save(w("photo-16bit.png"))
    image_case("grey-16-bit", w("photo-16bit.png"), "output")
    image.save(w("animated.gif"), save_all=True, append_images=[image.rotate(5), image.rotate(-5)], duration=100)
    image_case("animated-gif", w("animated.gif"), "output")
    for side in (40, 64, 128):
        image.resize((side, side)).save(w(f"photo-{side}.png"))
        image_case(f"tiny-{side}px", w(f"photo-{side}.png"), "refusal" if side < 100 else "either")
    image.resize((6000, 6000)).save(w("photo-36mp.jpg"), quality=80)
    image_case("36-megapixels", w("photo-36mp.jpg"), "output")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the phone's upright is stored in EXIF
    image.rotate(90, expand=True).save(w("photo-exif.jpg"), exif=exif)
    image_case("exif-rotated", w("photo-exif.jpg"), "output")
    image.rotate(180).save(w("upside-down.png"))
    image_case("upside-down", w("upside-down.png"), "either")
    Image.fromarray(np.concatenate([astronaut, astronaut[:, ::-1]], 1)).save(w("two-faces.png"))
    image_case("two-faces", w("two-faces.png"), "output")
    Image.fromarray(data.chelsea()).save(w("cat.png"))
    image_case("animal-cat", w("cat.png"), "either")
    Image.fromarray(data.coffee()).save(w("coffee.png"))
    image_case("no-face-coffee", w("coffee.png"), "refusal")
    Image.fromarray(data.camera()).save(w("cameraman.png"))
    image_case("cameraman-side-view", w("cameraman.png"), "either")
    Image.fromarray(np.linspace(0, 255, 512 * 512 * 3).reshape(512, 512, 3).astype(np.uint8)).save(w("gradient.png"))
    image_case("no-face-gradient", w("gradient.png"), "refusal")
    Image.fromarray((astronaut * 0.08).astype(np.uint8)).save(w("dark.png"))
    image_case("very-dark", w("dark.png"), "either")
    Image.fromarray(np.zeros((2000, 40, 3), np.uint8)).save(w("strip.png"))
    image_case("thin-strip", w("strip.png"), "refusal")
    raw_png = (EXAMPLES / "astronaut.png").read_bytes()
    w("truncated.png").write_bytes(raw_png[: len(raw_png) // 2])
    image_case("truncated-png", w("truncated.png"), "either")
    w("zero.png").write_bytes(b"")
    image_case("zero-bytes", w("zero.png"), "refusal")
    w("svg.png").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    image_case("svg-named-png", w("svg.png"), "refusal")
    shutil.copy(EXAMPLES / "voice.wav", w("wav-named.png"))
    image_case("wav-named-png", w("wav-named.png"), "refusal")
    image_case("video-as-photo", clip, "refusal")
    if faces is not None and faces.is_dir():
        for path in sorted(p for p in faces.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")):
            image_case(f"faces-{path.stem}", path, "either")

    # ---- lip-sync (the example photo + speech)
    lipsync_case("example", EXAMPLES / "driving_speech.wav", "output")
    soundfile.write(str(w("speech-8k.wav")), resample(speech, sr, 8000), 8000)
    lipsync_case("wav-8khz", w("speech-8k.wav"), "output")
    soundfile.write(str(w("speech-stereo.wav")), np.stack([speech, speech], 1), sr)
    lipsync_case("wav-stereo", w("speech-stereo.wav"), "output")
    lipsync_case("silence", w("silence.wav"), "either")
    lipsync_case("white-noise", w("noise.wav"), "either")
    lipsync_case("music", w("music.wav"), "either")
    lipsync_case("video-as-speech", clip, "output")
    lipsync_case("image-as-speech", EXAMPLES / "astronaut.png", "refusal")
    lipsync_case("zero-bytes", w("empty.mp4"), "refusal")
    lipsync_case("no-face-photo", EXAMPLES / "driving_speech.wav", "refusal", image=w("coffee.png"))
    if (w("voice.mp3")).exists():
        lipsync_case("mp3", w("voice.mp3"), "output")
    return cases


# ------------------------------------------------------------------------------------------------ running


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise CaseTimeout in the main thread after ``seconds`` (SIGALRM; the harness runs one case at a time)."""
    def expire(signum, frame):
        raise CaseTimeout(f"over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


class Runner:
    def __init__(self, pipeline: str, steps: int, timeout: float, scratch: Path):
        from omnitalker.pipeline import OmniTalkerPipeline
        from omnitalker.ui.handlers import DemoHandlers

        self.pipeline_name, self.steps, self.timeout, self.scratch = pipeline, steps, timeout, scratch
        self.pipe = OmniTalkerPipeline.from_pretrained(pipeline)
        self.pipe.set_progress_bar_config(disable=True)
        self.app_root = scratch / "app-results"
        self.handlers = DemoHandlers(self.pipe, output_root=self.app_root)
        self.cli_out = scratch / "cli-out"
        self.cli_out.mkdir(parents=True, exist_ok=True)

    def run(self, case: Case, path: str) -> Outcome:
        temp = Path(tempfile.gettempdir())
        before = _entries(temp)
        start = time.perf_counter()
        result = Outcome(case.name, case.group, path, case.expect, "crash")
        try:
            with time_limit(self.timeout), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result.outcome, result.message = getattr(self, f"_{path}")(case)
        except CaseTimeout as error:
            result.outcome, result.message = "hang", str(error)
        except Exception as error:  # noqa: BLE001 - the harness reports every escape as a crash
            result.outcome, result.message = "crash", f"{type(error).__name__}: {error}"
        result.seconds = round(time.perf_counter() - start, 2)
        leftovers = sorted(_entries(temp) - before)
        if path == "app" and result.outcome != "output":
            leftovers += [str(p.relative_to(self.app_root)) for p in self.app_root.rglob("request-*")]
        if path == "cli":
            leftovers += [p.name for p in self.cli_out.iterdir() if p.name != "out.mp4" or result.outcome != "output"]
        result.leftovers = leftovers
        shutil.rmtree(self.app_root, ignore_errors=True)
        for item in self.cli_out.iterdir():
            item.unlink()
        return result

    def _pipeline(self, case: Case) -> tuple[str, str]:
        import torch

        kwargs = dict(reference_video=case.video, reference_image=case.image, reference_audio=case.voice,
                      reference_text=case.reference_text, num_inference_steps=self.steps,
                      generator=torch.Generator().manual_seed(0), output_type="np")
        try:
            if case.audio is not None:
                out = self.pipe(audio=case.audio, **kwargs)
            else:
                out = self.pipe(case.text, **kwargs)
        except ValueError as error:
            return "refusal", str(error)
        frames = out.frames[0]
        if len(frames) == 0 or not np.isfinite(out.audio[0]).all():
            return "crash", f"empty or non-finite output ({len(frames)} frames)"
        return "output", f"{len(out.audio[0]) / out.sample_rate:.2f} s"

    def _app(self, case: Case) -> tuple[str, str]:
        import gradio as gr

        from omnitalker.ui.handlers import GENERIC_ERROR

        try:
            if case.audio is not None:
                video = self.handlers.lipsync(case.image, case.video, case.audio, num_inference_steps=self.steps)
            else:
                video = self.handlers.talk(case.video, case.image, case.voice, case.reference_text or "",
                                           case.text, num_inference_steps=self.steps)[0]
        except gr.Error as error:
            message = str(error.message if hasattr(error, "message") else error)
            return ("crash" if message == GENERIC_ERROR else "refusal"), message
        return _playable(Path(video))

    def _cli(self, case: Case) -> tuple[str, str]:
        from omnitalker.ui.cli import main

        target = self.cli_out / "out.mp4"
        argv = ["lipsync" if case.audio is not None else "generate", "--pipeline", self.pipeline_name,
                "--steps", str(self.steps), "--out", str(target)]
        if case.text is not None and case.audio is None:
            argv.append(f"--text={case.text}")
        for flag, value in (("--reference", case.video), ("--image", case.image), ("--voice", case.voice),
                            ("--audio", case.audio), ("--reference-text", case.reference_text)):
            if value is not None:
                argv.append(f"{flag}={value}")
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            try:
                code = main(argv)
            except SystemExit as exit_:  # argparse
                code = exit_.code
        message = stderr.getvalue().strip().splitlines()[-1] if stderr.getvalue().strip() else ""
        if code == 0:
            return _playable(target)
        if code == 2 and target.exists():
            return "crash", f"refused but {target.name} was written: {message}"
        return ("refusal" if code == 2 else "crash"), message


def _playable(path: Path) -> tuple[str, str]:
    """An mp4 with video and audio streams that decodes."""
    import av

    if not path.is_file():
        return "crash", f"no file at {path.name}"
    with av.open(str(path)) as container:
        kinds = {stream.type for stream in container.streams}
        frames = sum(1 for _ in container.decode(video=0))
    if kinds != {"video", "audio"} or frames == 0:
        return "crash", f"{path.name}: streams {sorted(kinds)}, {frames} frames"
    return "output", f"{frames} frames"


def message_problems(message: str) -> list[str]:
    problems = []
    if not INPUT_WORDS.search(message):
        problems.append("names no input")
    if not FIX_WORDS.search(message):
        problems.append("names no fix")
    if "Traceback" in message or "site-packages" in message:
        problems.append("internals")
    return problems


def summarize(outcomes: list[Outcome]) -> dict:
    counts = Counter((o.path, o.outcome) for o in outcomes)
    unexpected = [o for o in outcomes if o.expect != "either" and o.outcome in ("output", "refusal")
                  and o.outcome != o.expect]
    unsupported_spoken = [o for o in unexpected if o.group == "text" and o.outcome == "output"]
    bad_messages = {o.message: message_problems(o.message) for o in outcomes if o.outcome == "refusal"}
    bad_messages = {m: p for m, p in bad_messages.items() if p}
    return {
        "cases": len({o.case for o in outcomes}),
        "runs": len(outcomes),
        "by_path": {path: {kind: counts[(path, kind)] for kind in ("output", "refusal", "crash", "hang")}
                    for path in sorted({o.path for o in outcomes})},
        "crashes": [asdict(o) for o in outcomes if o.outcome == "crash"],
        "hangs": [asdict(o) for o in outcomes if o.outcome == "hang"],
        "unexpected": [asdict(o) for o in unexpected],
        "unsupported_text_spoken": len(unsupported_spoken),
        "leftovers": [asdict(o) for o in outcomes if o.leftovers],
        "refusal_messages": len({o.message for o in outcomes if o.outcome == "refusal"}),
        "messages_without_input_or_fix": bad_messages,
        "slowest": sorted(([o.seconds, o.case, o.path] for o in outcomes), reverse=True)[:5],
    }


def _git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _weights_hash(pipeline: str) -> str:
    """sha256 (first 12 hex digits) of the pipeline's transformer weights: which weights a run used."""
    import hashlib

    files = sorted((Path(pipeline) / "transformer").glob("*.safetensors"))
    if not files:
        return f"{pipeline} (not a local folder)"
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"{pipeline} (transformer sha256 {digest.hexdigest()[:12]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", default=str(PIPELINE))
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--only", nargs="+", help="case names containing any of these")
    parser.add_argument("--limit", type=int, help="at most this many cases per group")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--faces", type=Path, help="a folder of portraits to add as photo cases (not copied)")
    parser.add_argument("--workdir", type=Path, help="where the media are made (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--list", action="store_true", help="print the cases and stop")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="omnitalker-fuzz-"))
    workdir = args.workdir or scratch / "media"
    own_temp = scratch / "tmp"  # temporary files of this process only: what a case leaves behind is its own
    own_temp.mkdir()
    os.environ["TMPDIR"] = tempfile.tempdir = str(own_temp)
    try:
        cases = text_cases() + media_cases(workdir, args.faces)
        cases = [c for c in cases if c.group in args.groups and (not args.only or any(o in c.name for o in args.only))]
        if args.limit:
            per_group: Counter = Counter()
            cases = [c for c in cases if (per_group.update([c.group]) or per_group[c.group] <= args.limit)]
        print(f"{len(cases)} cases: {dict(Counter(c.group for c in cases))}")
        if args.list:
            for case in cases:
                print(f"{case.name:40s} {case.expect}")
            return
        runner = Runner(args.pipeline, args.steps, args.timeout, scratch)
        outcomes = []
        began = time.perf_counter()
        for number, case in enumerate(cases, 1):
            for path in (p for p in args.paths if p in case.paths):
                outcome = runner.run(case, path)
                outcomes.append(outcome)
                flag = "" if outcome.outcome in ("output", "refusal") and outcome.expect in ("either", outcome.outcome) \
                    else "   <-- " + outcome.outcome.upper()
                print(f"[{number}/{len(cases)}] {case.name} {path}: {outcome.outcome} {outcome.seconds:.1f}s "
                      f"{outcome.message[:110]!r}{flag}", flush=True)
        summary = summarize(outcomes)
        summary["seconds"] = round(time.perf_counter() - began, 1)
        print(json.dumps({k: summary[k] for k in ("cases", "runs", "by_path", "unsupported_text_spoken",
                                                 "refusal_messages", "seconds")}, indent=1))
        for kind in ("crashes", "hangs", "unexpected", "leftovers"):
            for item in summary[kind]:
                print(f"{kind}: {item['case']} [{item['path']}] {item['outcome']}: {item['message'][:200]} "
                      f"{item['leftovers'] or ''}")
        for message, problems in summary["messages_without_input_or_fix"].items():
            print(f"message ({', '.join(problems)}): {message[:200]}")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        record = {"commit": _git_commit(), "weights": _weights_hash(args.pipeline),
                  "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                  "pipeline": args.pipeline, "steps": args.steps, "timeout_s": args.timeout,
                  "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv), "summary": summary,
                  "outcomes": [asdict(o) for o in outcomes]}
        args.json.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
