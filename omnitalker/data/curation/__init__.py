"""Real-video curation (paper appendix B.1): the pieces behind ``python -m omnitalker.data.prepare``.

One concern per file (frames are decoded one at a time by ``omnitalker.io.video.iter_frames``):

    shots.py           stage 1: scene cuts (PySceneDetect) + face tracks (IoU > 0.5) -> single-face shots
    vad.py             stage 2: voice activity with silero-vad's bundled model
    active_speaker.py  stage 2: does the tracked face speak? (mouth opening vs speech energy)
    transcripts.py     stage 2: sidecar .srt / .txt transcripts, or a SpeechRecognizer (bundled Whisper; word timings)
    quality.py         stage 3: audio quality as an SNR estimate
    filters.py         stage 3: the named thresholds and the reasons a candidate clip is dropped
"""
