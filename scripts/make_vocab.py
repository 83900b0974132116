"""Generate omnitalker's default text vocab, omnitalker/frontend/assets/vocab.txt (F5-TTS format: line i = token id i).

    python scripts/make_vocab.py                 # rewrite the packaged vocab
    python scripts/make_vocab.py --check         # exit 1 if the packaged vocab is out of date

Contents, in this order (deterministic: the same pypinyin version gives the same file):
  1. " " (id 0; also the id of unknown characters);
  2. single characters, sorted by code point: printable ASCII (letters of both cases, digits,
     punctuation), the Latin-1 letters (à, é, ñ, ß, ... so French/German/Spanish text can be fine-tuned
     without growing the vocab) and the middle dot, dashes and ellipsis, and common CJK punctuation
     (、。「」《》【】 and the full-width ！，：；？（）～);
  3. every pinyin syllable pypinyin knows (its single-character and phrase dictionaries) in every tone,
     spelled as pypinyin's TONE3 style spells them, which is what the tokenizer emits: tones 1-4 as a
     trailing digit ("ma1" ... "ma4"), the neutral tone bare ("ma"; pypinyin never writes a "5"), ü as
     "v" ("lv4", "nve4"), ê as "ê". Sorted by code point. The bare forms of single-letter syllables
     ("a", "e", "o", "m", "n") are the letters from section 2 and share their ids, as in F5-TTS.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VOCAB_PATH = Path(__file__).resolve().parent.parent / "omnitalker" / "frontend" / "assets" / "vocab.txt"
TONES = ("", "1", "2", "3", "4")  # neutral (bare), then tones 1-4, as pypinyin TONE3 writes them

PRINTABLE_ASCII = [chr(code) for code in range(0x21, 0x7F)]
LATIN1_LETTERS = [chr(code) for code in range(0xC0, 0x100) if chr(code) not in "\u00d7\u00f7"]  # not × ÷
GENERAL_PUNCTUATION = ["\u00b7", "\u2013", "\u2014", "\u2026"]  # · – — …
CJK_PUNCTUATION = list(
    "\u3001\u3002\u3008\u3009\u300a\u300b\u300c\u300d\u300e\u300f\u3010\u3011\u3014\u3015"  # 、。〈〉《》「」『』【】〔〕
    "\uff01\uff08\uff09\uff0c\uff0e\uff1a\uff1b\uff1f\uff5e"  # ！（），．：；？～
)


def pinyin_syllables() -> list[str]:
    """All toneless syllables in pypinyin's data (ü spelled 'v'), sorted."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.phrases_dict import phrases_dict
    from pypinyin.pinyin_dict import pinyin_dict

    readings = {reading for value in pinyin_dict.values() for reading in value.split(",")}
    readings.update(reading for value in phrases_dict.values() for syllable in value for reading in syllable)
    return sorted({to_normal(reading) for reading in readings})


def build_vocab() -> list[str]:
    characters = sorted(set(PRINTABLE_ASCII + LATIN1_LETTERS + GENERAL_PUNCTUATION + CJK_PUNCTUATION))
    syllables = sorted({base + tone for base in pinyin_syllables() for tone in TONES} - set(characters))
    return [" "] + characters + syllables


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only compare with the packaged vocab")
    parser.add_argument("--output", type=Path, default=VOCAB_PATH, help="where to write vocab.txt")
    args = parser.parse_args()

    text = "".join(token + "\n" for token in build_vocab())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python scripts/make_vocab.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date ({text.count(chr(10))} tokens)")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {text.count(chr(10))} tokens to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
