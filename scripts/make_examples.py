"""Make the example media that ship with the demo (examples/), offline and reproducibly.

    python scripts/make_examples.py            # writes examples/*.mp4|png|wav and examples/examples.json

Everything is made by the project itself:
- the face is scikit-image's public-domain astronaut photo, cropped to the head;
- the voices are espeak-ng (omnitalker.frontend.espeak), with the phoneme timeline it reports;
- the talking reference clip animates the photo: visual codes from the same phonemes and a speaker style
  (omnitalker.data.motion.synthesize_codes) -> landmarks (omnitalker.frontend.face.codes.decode_codes) -> the warp
  renderer -> H.264 + AAC (omnitalker.io.export.export_to_video);
- a photo + voice pair in English and one in Mandarin (Talk tab) and a driving speech clip (Lip-sync tab).

examples.json lists the files and their transcripts; omnitalker/ui/app.py builds its gr.Examples from it.
Each file stays well under 1 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package
FACE_CROP = (0, 100, 280, 380)  # (top, left, bottom, right) of the astronaut's head and shoulders in the photo
FACE_SIZE = 256  # pixels, side of the example photo and video
VIDEO_FPS = 25
SEED = 0
CLIP_CRF = 28  # x264 quality for the example clip: small file, still clean at 256 px
REFERENCE_TEXT = "Hello, I am an astronaut. I like to talk about the stars."
VOICE_TEXT = "Good morning. This is my voice, recorded for the demo."
DRIVING_TEXT = "Welcome aboard. Please keep your helmet on at all times."
REFERENCE_VOICE = "en-us+m3"
PHOTO_VOICE = "en-us+f2"
DRIVING_VOICE = "en-gb-x-rp+m1"
CHINESE_VOICE_TEXT = "早上好。这是我的声音，我很高兴认识你。"
CHINESE_TEXT = "今天天气很好，我们去公园散步吧。"
CHINESE_VOICE = "cmn-latn-pinyin+f3"


def astronaut_photo() -> np.ndarray:
    """(FACE_SIZE, FACE_SIZE, 3) uint8: the astronaut's head, framed like a talking-head video."""
    import cv2
    from skimage import data

    top, left, bottom, right = FACE_CROP
    return cv2.resize(data.astronaut()[top:bottom, left:right], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)


def speak(text: str, voice: str):
    """espeak-ng speech at 24 kHz (float32) and its phoneme timeline."""
    from omnitalker.frontend.audio import SAMPLE_RATE
    from omnitalker.frontend.espeak import synthesize_many
    from omnitalker.io.audio import resample

    (utterance,) = synthesize_many([{"text": text, "voice": voice}])
    wave = resample(utterance.audio.astype(np.float64), utterance.sample_rate, SAMPLE_RATE).astype(np.float32)
    return wave, utterance.phonemes


def talking_clip(photo: np.ndarray, wave: np.ndarray, phonemes, seed: int = SEED) -> np.ndarray:
    """(T, H, W, 3) uint8: the photo speaking `phonemes`, with a calm synthetic speaker style."""
    from omnitalker.data.motion import random_speaker, synthesize_codes
    from omnitalker.frontend.audio import SAMPLE_RATE
    from omnitalker.frontend.face import FaceAnalyzer
    from omnitalker.frontend.face.codes import CODE_FPS, FaceIdentity, decode_codes, retime, video_frame_count
    from omnitalker.render.warp import WarpRenderer

    rng = np.random.default_rng(seed)
    style = random_speaker(rng, "astronaut")
    track = FaceAnalyzer().analyze_image(photo)
    identity = FaceIdentity.from_track(track)
    codes = synthesize_codes(phonemes, len(wave) / SAMPLE_RATE, style, rng)  # T30 58
    codes = retime(codes, CODE_FPS, VIDEO_FPS, video_frame_count(len(wave), VIDEO_FPS))  # T 58
    landmarks = decode_codes(np.asarray(codes), identity)  # T 478 3
    renderer = WarpRenderer(output_size=FACE_SIZE)
    state = renderer.prepare(photo, track.landmarks[0])
    return np.asarray(renderer.render(state, landmarks))


def main(argv: list[str] | None = None) -> None:
    import soundfile

    from omnitalker.frontend.audio import SAMPLE_RATE
    from omnitalker.io.export import export_to_video

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=EXAMPLES_DIR, help="output folder (default: examples/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    photo = astronaut_photo()
    import cv2

    cv2.imwrite(str(args.out / "astronaut.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))

    wave, phonemes = speak(REFERENCE_TEXT, REFERENCE_VOICE)
    frames = talking_clip(photo, wave, phonemes)
    export_to_video(frames, args.out / "astronaut_talking.mp4", fps=VIDEO_FPS, audio=wave, sample_rate=SAMPLE_RATE,
                    crf=CLIP_CRF)

    voice, _ = speak(VOICE_TEXT, PHOTO_VOICE)
    soundfile.write(args.out / "voice.wav", voice, SAMPLE_RATE, subtype="PCM_16")
    from omnitalker.frontend.phonemes import espeak_text

    chinese, _ = speak(espeak_text(CHINESE_VOICE_TEXT, "zh"), CHINESE_VOICE)
    soundfile.write(args.out / "voice_zh.wav", chinese, SAMPLE_RATE, subtype="PCM_16")
    driving, _ = speak(DRIVING_TEXT, DRIVING_VOICE)
    soundfile.write(args.out / "driving_speech.wav", driving, SAMPLE_RATE, subtype="PCM_16")

    manifest = {
        "talk_video": [{"video": "astronaut_talking.mp4", "reference_text": REFERENCE_TEXT,
                        "text": "Space is quiet, but I can still tell you a story."}],
        "talk_photo": [{"image": "astronaut.png", "voice": "voice.wav", "reference_text": VOICE_TEXT,
                        "text": "A photo and a short recording are enough to make me speak."},
                       {"image": "astronaut.png", "voice": "voice_zh.wav", "reference_text": CHINESE_VOICE_TEXT,
                        "text": CHINESE_TEXT}],
        "lipsync": [{"image": "astronaut.png", "audio": "driving_speech.wav", "text": DRIVING_TEXT}],
    }
    (args.out / "examples.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for path in sorted(args.out.iterdir()):
        print(f"{path.name:28s} {path.stat().st_size / 1024:7.1f} KB")


if __name__ == "__main__":
    main()
