"""What the bundled demo weights can and cannot do, in the words the app, the README and the model card use.

The demo (`weights/omnitalker-demo`) was trained on synthetic espeak-ng voices only. Where a person gives it a
real voice (the app's voice upload, `--voice` on the command line) they should read what to expect before judging
the output; `tests/test_notices.py` keeps the README and the model card saying the same.
"""

from __future__ import annotations

# Shown where a voice is uploaded while the bundled demo (or another pipeline trained only on synthetic voices)
# speaks. The figures: resemblyzer speaker similarity of the output to the reference over five real people's
# voices, and of an unrelated stock espeak voice to the same references.
DEMO_REAL_VOICE_NOTICE = (
    "The bundled demo model has only heard synthetic espeak-ng voices: given a real person's voice it keeps the "
    "words but not the timbre (speaker similarity to the reference 0.51, no closer than an unrelated stock espeak "
    "voice's 0.47). For a real voice, use a pipeline converted from the released F5-TTS weights: it needs the "
    "network once, and those weights are for non-commercial use only."
)
