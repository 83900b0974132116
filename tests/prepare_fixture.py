"""Fixture videos for tests/test_prepare.py: a rendered talking face with espeak speech, cut into shots.

    expected = build_inputs(folder)      # writes the videos + sidecars, returns what curation must find

``talk.mp4`` (25 fps, 256 px, ~17 s) is five shots separated by hard cuts; the face is the astronaut
photo driven by codes from the same espeak phoneme timeline as its voice (omnitalker.data.motion)
and rendered with the warp renderer, so the mouth moves with the speech:

    shot 1  face                   speaks SENTENCE                      -> kept
    shot 2  mirrored, darker       silent                               -> no_speech
    shot 3  face                   speaks SENTENCE, pause, "Yes."       -> kept + too_short
    shot 4  face at 35 % size      speaks SENTENCE                      -> face_too_small
    shot 5  mirrored               still face, SENTENCE as voice-over   -> not_speaking

``talk.srt`` times every utterance. Awkward and bad inputs beside it: ``phone.mp4`` (shot 1 stored sideways
with a 90 deg display rotation and a variable frame rate, transcript in ``phone.txt``; must be kept), ``noaudio.mp4`` (no audio
track) and ``corrupt.mp4`` (random bytes).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np

from tests.pipeline_fixtures import astronaut_face

SIZE = 256
FPS = 25
SAMPLE_RATE = 24000
SENTENCE = "The quick brown fox jumps over the lazy dog."
SHORT = "Yes."
SMALL_SCALE = 0.35  # shot 4: the face shrunk to this fraction of the frame side
DARKEN = 0.55  # shot 2: brightness factor (with the mirror, a clear cut)
SEED = 0
MILLIS = 1000  # video time base 1/1000 s
VFR_SHIFT_SECONDS = 0.01


def _speak(text: str):
    """(audio (n,) float32 at 24 kHz, codes (T, 58) at FPS) of one espeak utterance with matching mouth motion."""
    from omnitalker.data.motion import random_speaker, synthesize_codes
    from omnitalker.frontend.espeak import synthesize
    from omnitalker.frontend.face.codes import CODE_FPS, resample_codes
    from omnitalker.io.audio import load_audio

    utterance = synthesize(text, voice="en-us")
    audio = load_audio(utterance.audio, sample_rate=utterance.sample_rate).numpy()
    style = random_speaker(np.random.default_rng(SEED), "fixture")
    style = dataclasses.replace(style, head_amplitude=0.03, nod_amplitude=0.02, translation_amplitude=0.01,
                                articulation=1.2, blink_rate=0.2)
    seconds = len(audio) / SAMPLE_RATE
    codes = synthesize_codes(utterance.phonemes, seconds, style, np.random.default_rng(SEED))
    return audio, resample_codes(codes, CODE_FPS, FPS)  # 30 fps codes -> the video's 25 fps


def _render(face: np.ndarray, codes_list: list[np.ndarray], output_size: int = SIZE) -> list[np.ndarray]:
    from omnitalker.frontend.face.codes import FaceIdentity, decode_codes
    from omnitalker.frontend.face.landmarks import FaceAnalyzer
    from omnitalker.render.warp import WarpRenderer

    with FaceAnalyzer() as analyzer:
        track = analyzer.analyze_image(face)
    identity = FaceIdentity.from_track(track)
    renderer = WarpRenderer(output_size=output_size)
    reference = renderer.prepare(face, track.landmarks[0])
    return [np.asarray(renderer.render(reference, decode_codes(codes, identity))) for codes in codes_list]


def _small(frames: np.ndarray) -> np.ndarray:
    import cv2

    side = int(SIZE * SMALL_SCALE) // 2 * 2
    canvas = np.full((len(frames), SIZE, SIZE, 3), (90, 120, 150), np.uint8)
    offset = (SIZE - side) // 2
    for index, frame in enumerate(frames):
        canvas[index, offset : offset + side, offset : offset + side] = cv2.resize(
            frame, (side, side), interpolation=cv2.INTER_AREA)
    return canvas


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray | None, rotation: int = 0,
                variable_rate: bool = False) -> None:
    """H.264 (+ AAC) mp4 from (T, H, W, 3) frames (or an iterable of them); `rotation` is stored as the display matrix (phone-style); `variable_rate` moves
    every odd frame VFR_SHIFT_SECONDS later (frame intervals alternate 50 / 30 ms at 25 fps)."""
    from fractions import Fraction

    import av

    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        stream.codec_context.time_base = Fraction(1, MILLIS)
        if rotation:
            stream.set_display_rotation(rotation)
        if audio is not None:
            sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for index, frame in enumerate(itertools.chain([first], frames)):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            shift = VFR_SHIFT_SECONDS if variable_rate and index % 2 else 0.0
            picture.pts, picture.time_base = int(round((index / FPS + shift) * MILLIS)), Fraction(1, MILLIS)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)[None]
            chunk = 1024
            for start in range(0, samples.shape[1], chunk):
                piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + chunk]),
                                                   format="s16", layout="mono")
                piece.sample_rate = SAMPLE_RATE
                for packet in sound.encode(piece):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)


def _srt_time(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    return f"{millis // 3600000:02d}:{millis // 60000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"


def build_inputs(folder: Path) -> dict:
    """Write the fixture inputs into `folder`; returns the expected outcome for the tests."""
    folder.mkdir(parents=True, exist_ok=True)
    face = astronaut_face(SIZE)
    sentence_audio, sentence_codes = _speak(SENTENCE)
    short_audio, short_codes = _speak(SHORT)
    talking, short_talk = _render(face, [sentence_codes, short_codes])
    n_talk, n_short = len(talking), len(short_talk)

    def still(seconds: float) -> np.ndarray:
        return np.repeat(face[None], int(round(seconds * FPS)), axis=0)

    def silence(frames: int) -> np.ndarray:
        return np.zeros(int(round(frames / FPS * SAMPLE_RATE)), np.float32)

    def voiced(audio: np.ndarray, frames: int) -> np.ndarray:  # audio padded/cut to the frames' duration
        out = silence(frames)
        out[: min(len(out), len(audio))] = audio[: len(out)]
        return out

    pieces = []  # (frames, audio, cue text or None)
    shot1 = [(still(0.4), None), (talking, sentence_audio), (still(0.4), None)]
    shot2 = [(np.round(still(2.0)[:, :, ::-1] * DARKEN).astype(np.uint8), None)]
    shot3 = [(still(0.3), None), (talking, sentence_audio), (still(0.9), None), (short_talk, short_audio),
             (still(0.4), None)]
    shot4 = [(_small(still(0.3)), None), (_small(talking), sentence_audio), (_small(still(0.3)), None)]
    shot5 = [(still(0.3)[:, :, ::-1], None), (still(n_talk / FPS)[:, :, ::-1], sentence_audio),
             (still(0.3)[:, :, ::-1], None)]
    cues, frames_done = [], 0
    for shot in (shot1, shot2, shot3, shot4, shot5):
        for frames, audio in shot:
            frames = np.asarray(frames)
            pieces.append((frames, silence(len(frames)) if audio is None else voiced(audio, len(frames))))
            if audio is not None:
                text = SHORT if len(frames) == n_short else SENTENCE
                cues.append((frames_done / FPS, (frames_done + len(frames)) / FPS, text))
            frames_done += len(frames)
    video = np.concatenate([p[0] for p in pieces])
    audio = np.concatenate([p[1] for p in pieces])
    write_video(folder / "talk.mp4", video, audio)
    (folder / "talk.srt").write_text("\n".join(
        f"{i + 1}\n{_srt_time(a)} --> {_srt_time(b)}\n{text}\n" for i, (a, b, text) in enumerate(cues)))

    shot1_frames = np.concatenate([np.asarray(f) for f, _ in shot1])
    shot1_audio = np.concatenate([silence(len(f)) if a is None else voiced(a, len(f)) for f, a in shot1])
    sideways = np.ascontiguousarray(np.rot90(shot1_frames, k=-1, axes=(1, 2)))  # display rotation turns it back
    write_video(folder / "phone.mp4", sideways, shot1_audio, rotation=90, variable_rate=True)
    (folder / "phone.txt").write_text(SENTENCE + "\n")
    write_video(folder / "noaudio.mp4", shot1_frames[:FPS], None)
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(SEED).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return {
        "talk_seconds": len(video) / FPS,
        "sentence_seconds": len(sentence_audio) / SAMPLE_RATE,
        "kept_texts": {"talk.mp4": [SENTENCE, SENTENCE], "phone.mp4": [SENTENCE]},
        "talk_drops": {"no_speech": 1, "too_short": 1, "face_too_small": 1, "not_speaking": 1},
    }
