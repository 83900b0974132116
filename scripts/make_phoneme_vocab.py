"""Generate the phoneme vocabulary, omnitalker/frontend/assets/phonemes.txt (line i = token id i).

    python scripts/make_phoneme_vocab.py            # rewrite the packaged vocab
    python scripts/make_phoneme_vocab.py --check    # exit 1 if it is out of date

The tokens are what ``omnitalker.frontend.phonemes.events_to_sequence`` makes of espeak-ng's phoneme events. Two
sources, united:
1. espeak-ng's compiled phoneme tables (``espeak-ng-data/phontab``): every phoneme of the English tables
   (``en*``) and the Mandarin one (``cmn``) and the tables they include; vowels also with espeak's
   primary / secondary stress marks (``'`` / ``,``) in front, Mandarin vowels also with a tone digit 1-5;
2. what espeak actually reports when it speaks a broad text set with every voice the synthetic corpus uses
   (``omnitalker.data.motion.ENGLISH_VOICES`` + ``cmn``): Faker's en_US word list, the alphabet spelled,
   numbers, the natural-sentence grammar's words, and one character for every pinyin syllable x tone.
Order: ``_`` (pause, id 0), ``|`` (word boundary, id 1), then the rest sorted by code point.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

VOCAB_PATH = Path(__file__).resolve().parent.parent / "omnitalker" / "frontend" / "assets" / "phonemes.txt"
CHUNK_WORDS = 60  # words per espeak utterance


PHONTAB_HEADER = 4  # bytes: number of tables + padding
TABLE_HEADER = 36  # bytes: n_phonemes, includes, 2 pad, 32-byte name
ENTRY_SIZE = 16  # PHONEME_TAB: mnemonic u32, flags u32, program u16, code, type, start/end type, lengths
TYPE_OFFSET = 11
PH_PAUSE, PH_VOWEL = 0, 2
STRESS_MARKS = ("", "'", ",")
TONES = ("", "1", "2", "3", "4", "5")


def table_phonemes() -> set[str]:
    """Tokens from espeak's phoneme tables for the en* and cmn tables and everything they include."""
    import espeakng_loader

    data = (Path(espeakng_loader.get_data_path()) / "phontab").read_bytes()
    tables, offset = [], PHONTAB_HEADER
    for _ in range(data[0]):
        count, include = data[offset], data[offset + 1]
        name = data[offset + 4 : offset + TABLE_HEADER].split(b"\0")[0].decode()
        offset += TABLE_HEADER
        entries = []
        for index in range(count):
            entry = data[offset + ENTRY_SIZE * index : offset + ENTRY_SIZE * (index + 1)]
            mnemonic = struct.unpack("<I", entry[:4])[0].to_bytes(4, "little").rstrip(b"\0").decode("latin1")
            entries.append((mnemonic, entry[TYPE_OFFSET]))
        offset += ENTRY_SIZE * count
        tables.append((name, include, entries))
    wanted, tokens = set(), set()
    for index, (name, _, _) in enumerate(tables):
        if name.startswith("en") or name == "cmn":
            while index not in wanted and index > 0:  # follow the include chain (table 0 includes nothing)
                wanted.add(index)
                index = tables[index][1]
    wanted.add(0)
    for index in wanted:
        name, _, entries = tables[index]
        for mnemonic, kind in entries:
            if not mnemonic or kind == PH_PAUSE or mnemonic.startswith("_"):
                continue
            if kind != PH_VOWEL:
                tokens.add(mnemonic)
                continue
            tones = TONES if name == "cmn" else ("",)
            tokens |= {stress + mnemonic + tone for stress in STRESS_MARKS for tone in tones}
    return tokens


def english_texts() -> list[str]:
    from faker.providers.lorem.en_US import Provider

    from omnitalker.data.sentences import GRAMMAR_WORDS

    words = sorted(set(Provider.word_list) | set(GRAMMAR_WORDS))
    texts = [", ".join(words[i : i + CHUNK_WORDS]) + "." for i in range(0, len(words), CHUNK_WORDS)]
    texts.append(". ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ".")
    texts.append("0 1 2 3 4 5 6 7 8 9 10 11 12 13 20 21 100 1000 2026 3.5 1st 2nd 3rd 4th.")
    texts.append("Yes? No! Oh, well: fine; \"quoted\" - dash.")
    return texts


def chinese_texts() -> list[str]:
    """Characters covering every (syllable, tone) pair pypinyin's single-character dictionary has."""
    from pypinyin import Style, lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    chosen: dict[str, str] = {}
    for code in sorted(pinyin_dict):
        char = chr(code)
        if not 0x4E00 <= code <= 0x9FFF:
            continue
        syllable = lazy_pinyin(char, style=Style.TONE3, neutral_tone_with_five=True)[0]
        chosen.setdefault(syllable, char)
    chars = [chosen[key] for key in sorted(chosen)]
    return ["，".join(chars[i : i + CHUNK_WORDS]) + "。" for i in range(0, len(chars), CHUNK_WORDS)]


def collect() -> list[str]:
    from omnitalker.data.motion import CHINESE_VOICES, ENGLISH_VOICES
    from omnitalker.frontend.espeak import synthesize_many
    from omnitalker.frontend.phonemes import (
        ENGLISH_VOICE,
        SPECIAL_TOKENS,
        espeak_text,
        events_to_sequence,
        pinyin_tones,
    )

    jobs = [(text, voice, "en") for voice in sorted(set(ENGLISH_VOICES) | {ENGLISH_VOICE}) for text in english_texts()]
    jobs += [(text, voice, "zh") for voice in CHINESE_VOICES for text in chinese_texts()]
    spoken = synthesize_many([dict(text=espeak_text(text, lang), voice=voice) for text, voice, lang in jobs],
                             workers=2)
    tokens: set[str] = set()
    for (text, _, lang), utt in zip(jobs, spoken, strict=True):
        events = [{"phoneme": p.phoneme, "start": p.start, "end": p.end} for p in utt.phonemes]
        tones = pinyin_tones(text) if lang == "zh" else ()
        tokens |= set(events_to_sequence(events, utt.word_starts, tones, utt.duration).tokens)
    tokens |= table_phonemes()
    return list(SPECIAL_TOKENS) + sorted(tokens - set(SPECIAL_TOKENS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the packaged vocab is out of date")
    args = parser.parse_args()
    text = "".join(token + "\n" for token in collect())
    if args.check:
        if not VOCAB_PATH.is_file() or VOCAB_PATH.read_text(encoding="utf-8") != text:
            sys.exit(f"{VOCAB_PATH} is out of date: run python scripts/make_phoneme_vocab.py")
        print(f"{VOCAB_PATH} is up to date ({text.count(chr(10))} tokens)")
        return
    VOCAB_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {VOCAB_PATH}: {text.count(chr(10))} tokens")


if __name__ == "__main__":
    main()
