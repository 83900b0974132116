"""What the model can speak: the one rule both text front-ends apply (``text.py`` characters, ``phonemes.py``).

    from omnitalker.frontend.languages import clean_text, check_speakable
    clean_text("Ｈｉ\u200b 😀 Straße")     # 'Hi  Strasse' (before whitespace folding): what is spoken
    check_speakable("Hi 😀")               # ['😀']: a warning says the emoji is not spoken
    check_speakable("Привет")              # ValueError: Cyrillic ... speaks English and Mandarin Chinese ...

The models speak English and Mandarin Chinese (``SUPPORTED_LANGUAGES``, stated in every tokenizer config):
Latin letters (English, and loanwords with accents), digits, Chinese characters (read as Mandarin pinyin),
punctuation, and the symbols espeak-ng reads as words ($ % & + = ° ...). The rest, in this order:

1. invisible characters are removed: controls, format characters (zero-width spaces and joiners,
   direction marks, byte-order marks), variation selectors;
2. compatibility forms become their plain forms (Unicode NFKC: fullwidth Latin letters and digits, ligatures,
   superscripts, circled digits, ``℃``), except the fullwidth and CJK punctuation Chinese text is written
   with (the character vocab holds it as it is); other scripts' decimal digits become ASCII digits;
3. Latin letters that English spelling lacks get their usual transliteration (``ß`` -> ``ss``, ``æ`` -> ``ae``,
   ``ł`` -> ``l``, ...), and accented letters beyond Latin-1 (``ệ``, ``š``) or standing alone lose the accent,
   because espeak-ng's English voice reads them as letter names ("sharp s", "s hacek");
4. pictographs (emoji, dingbats, suits, arrows-as-pictures) and unassigned / private-use characters are
   not spoken: removed, and ``check_speakable`` names them in a warning;
5. letters of any other writing system (Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai, Hangul, kana,
   and Latin letters outside any alphabet such as IPA symbols) refuse the whole text with a ValueError that
   names the script, shows the part and lists the languages supported. English espeak would read them
   letter by letter ("Japanese letter", "Cyrillic pe"): confident nonsense, never produced.

Why our own code: no library maps scripts to what espeak-ng's English voice can read. Scripts come from
fontTools' copy of Unicode's Scripts data (``fontTools.unicodedata``), emoji from the ``regex`` module's
``Extended_Pictographic`` property.
"""

from __future__ import annotations

import unicodedata
import warnings

import regex

SUPPORTED_LANGUAGES = {"en": "English", "zh": "Mandarin Chinese"}
SUPPORTED_TEXT = "Latin letters, digits and Chinese characters"
LANGUAGES_SENTENCE = (f"This model speaks {' and '.join(SUPPORTED_LANGUAGES.values())} ({SUPPORTED_TEXT})")
EXAMPLE_CHARS = 24  # how much of an unsupported part a message quotes
CJK_START = 0x2E80  # no Chinese character comes before the CJK radicals block

# Latin letters with no ASCII base letter that espeak-ng's English voice spells out by name.
LATIN_TRANSLITERATION = str.maketrans({
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i", "ŋ": "ng", "Ŋ": "Ng", "ħ": "h",
    "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ĸ": "k",
})
# Symbols (Unicode "So") espeak-ng reads as words; every other such symbol is a pictograph and left out.
SPOKEN_SYMBOLS = frozenset("°©®™")

# Invisible: controls, format characters, variation selectors, skin-tone modifiers, and combining marks
# left over after NFC composition that belong to no script (stacked "Zalgo" accents; espeak ignores them).
_INVISIBLE = regex.compile(r"[\p{Cc}\p{Cf}\p{Variation_Selector}\p{Emoji_Modifier}]|(?=\p{M})\p{Script=Inherited}")
_WHITESPACE_CONTROLS = regex.compile(r"[\t\n\v\f\r\x1c-\x1f\x85]")
_PICTOGRAPH = regex.compile(r"[\p{Extended_Pictographic}\p{Co}\p{Cn}\p{Cs}\p{Regional_Indicator}]")
_KEEP_FULLWIDTH = regex.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")
_LATIN = regex.compile(r"\p{Script=Latin}")
# A one-letter word with an accent ("é" alone): espeak's English voice reads its name ("e acute").
_LONE_ACCENTED_LETTER = regex.compile(r"(?<!\p{L})[^\x00-\x7f](?!\p{L})(?<=\p{Script=Latin})")
LATIN_1_LETTERS = ("\u00c0", "\u00ff")  # accented letters espeak-ng's English voice reads inside words
# Script codes (ISO 15924, fontTools' Unicode Scripts data) named as a person knows them; others by Unicode's name.
_FRIENDLY_SCRIPTS = {"Hira": "Japanese kana", "Kana": "Japanese kana", "Hang": "Korean Hangul",
                     "Hani": "Chinese characters without a Mandarin reading", "Bopo": "Bopomofo (zhuyin)",
                     "Latn": "Latin letters outside the English alphabet"}
_NO_SCRIPT = ("Zyyy", "Zinh", "Zzzz")  # Common, Inherited, Unknown: shared marks and letters, not a language


def _plain_form(char: str) -> str:
    """Steps 1-4 for one character (after whitespace controls became spaces)."""
    if _INVISIBLE.match(char) or _PICTOGRAPH.match(char):
        return ""
    if not _KEEP_FULLWIDTH.match(char):
        char = unicodedata.normalize("NFKC", char)
    if len(char) == 1 and unicodedata.category(char) == "Nd" and not char.isascii():
        char = str(unicodedata.decimal(char))
    if len(char) == 1 and unicodedata.category(char) == "So" and char not in SPOKEN_SYMBOLS:
        return ""
    if len(char) == 1 and not char.isascii() and unicodedata.category(char)[0] in "LMN" and _belongs_to_no_script(char):
        return ""  # a modifier letter or mark shared by scripts ('ˇ', 'ー'): not a word to speak
    return char


def _belongs_to_no_script(char: str) -> bool:
    from fontTools import unicodedata as scripts

    return scripts.script(char) in _NO_SCRIPT


def _ascii_base(char: str) -> str:
    """'ệ' -> 'e'; a letter with no ASCII base letter stays as it is."""
    base = unicodedata.normalize("NFD", char)[0]
    return base if base.isascii() else char


def _fold_latin(char: str) -> str:
    """Accented Latin letters beyond Latin-1 lose their accents (espeak's English voice names them: "s hacek")."""
    if char.isascii() or LATIN_1_LETTERS[0] <= char <= LATIN_1_LETTERS[1] or not _LATIN.match(char):
        return char
    return _ascii_base(char)


def clean_text(text: str) -> str:
    """The text as it will be spoken: steps 1-4 of the module docstring (whitespace is not folded here)."""
    text = _WHITESPACE_CONTROLS.sub(" ", text)
    text = "".join(_plain_form(char) for char in unicodedata.normalize("NFC", text))
    text = unicodedata.normalize("NFC", text).translate(LATIN_TRANSLITERATION)
    text = "".join(_fold_latin(char) for char in text)
    return _LONE_ACCENTED_LETTER.sub(lambda match: _ascii_base(match.group()), text)


def left_out(text: str) -> list[str]:
    """Visible characters of ``text`` that are not spoken (pictographs, symbols), in order, without repeats."""
    text = _WHITESPACE_CONTROLS.sub(" ", text)
    dropped = {}
    for char in unicodedata.normalize("NFC", text):
        if not _INVISIBLE.match(char) and not _plain_form(char).strip() and not char.isspace():
            dropped.setdefault(char, None)
    return list(dropped)


def is_speakable_letter(char: str) -> bool:
    """True for a letter, mark or digit the models can read: ASCII, a Latin letter with an ASCII base letter
    (é, ñ, ü), or a Chinese character pypinyin has a reading for."""
    if char.isascii():
        return True
    if _LATIN.match(char):
        return unicodedata.normalize("NFD", char)[0].isascii()
    return is_chinese(char)


def is_chinese(char: str) -> bool:
    """True for a Chinese character pypinyin can read (CJK ideographs, including extensions). Characters before
    the CJK blocks are answered without importing pypinyin, whose first import reads its phrase dictionary (0.5 s
    on 2 CPU cores: it delayed the first spoken chunk of an English text by that much)."""
    if ord(char) < CJK_START:
        return False
    from pypinyin.pinyin_dict import pinyin_dict

    return ord(char) in pinyin_dict


def script_name(char: str) -> str:
    """The writing system of a letter, for messages ('ж' -> 'Cyrillic', 'か' -> 'Japanese kana')."""
    from fontTools import unicodedata as scripts

    code = scripts.script(char)
    return _FRIENDLY_SCRIPTS.get(code) or scripts.script_name(code)


def unsupported_parts(text: str) -> dict[str, str]:
    """Scripts the models cannot speak found in ``text`` (already cleaned) -> the first run of each, in order."""
    found: dict[str, str] = {}
    run, run_script = "", None
    for char in text + " ":
        # marks and digits belong to the letters around them; punctuation and spaces end a run
        readable = unicodedata.category(char)[0] not in "LMN" or is_speakable_letter(char)
        script = None if readable else script_name(char)
        if script is not None and (run_script in (None, script)):
            run, run_script = run + char, script
            continue
        if run_script is not None:
            found.setdefault(run_script, run[:EXAMPLE_CHARS])
        run, run_script = (char, script) if script is not None else ("", None)
    return found


def refuse_unsupported(cleaned: str, what: str = "text") -> str:
    """``cleaned`` (a ``clean_text`` result: the tokenizers pass their normalised text) as it is, or a ValueError
    naming the unsupported scripts in it (step 5; no warning)."""
    parts = unsupported_parts(cleaned)
    if parts:
        shown = " and ".join(f"{script} ('{part.strip()}')" for script, part in parts.items())
        raise ValueError(f"{what} contains {shown}, which this model cannot speak. {LANGUAGES_SENTENCE}: type "
                         "the text in one of them, or remove the other parts.")
    return cleaned


def check_speakable(text: str, what: str = "text") -> list[str]:
    """Apply the rule to a text a person typed: a ValueError naming the problem and the fix, or the list of
    symbols that will not be spoken (also given as a warning). ``what`` names the input in messages."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}")
    cleaned = refuse_unsupported(clean_text(text), what)
    dropped = left_out(text)
    if not any(char.isalnum() for char in cleaned):
        if not text.strip():
            raise ValueError(f"{what} is empty (or only whitespace): pass at least one word to speak")
        found = f"only emoji or symbols ({' '.join(dropped[:10])})" if dropped else "only punctuation or symbols"
        raise ValueError(f"{what} has nothing to speak: it contains {found}. {LANGUAGES_SENTENCE}: type words "
                         "in one of them.")
    if dropped:
        warnings.warn(f"{what}: emoji and symbols are not spoken, left out: {' '.join(dropped)}", UserWarning,
                      stacklevel=3)
    return dropped
