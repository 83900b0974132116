"""Front-ends: what turns raw inputs into the model's representation. Text -> token ids (text.py: characters /
pinyin; phonemes.py: espeak-ng phonemes with times, from espeak.py), audio -> log-mel (audio.py), speech -> transcript (asr.py),
faces -> landmarks -> visual codes (face/)."""
