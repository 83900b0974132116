"""One owner per shared fact: a value the whole project depends on is written as a literal in its owner only.

Every other module imports the owner's constant, so changing the fact is a one-line change. The check reads the
Python tokens of ``omnitalker/`` (numbers in docstrings, comments and messages are text, not code, and are allowed).

python -m pytest tests/test_one_owner.py -q
"""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "omnitalker"

# A number that must appear only in its owner, wherever it is written.
OWNED_NUMBERS = {
    "24000": "io/audio.py",  # SAMPLE_RATE
    "24_000": "io/audio.py",
    "93.75": "frontend/audio.py",  # mel FRAME_RATE (derived there from the sample rate and the hop)
}
# keyword = number: the keyword names a shared fact, and the number belongs to its owner only.
OWNED_KEYWORD_VALUES = {
    ("mel_dim", "100"): "frontend/audio.py", ("n_mels", "100"): "frontend/audio.py",
    ("hop_length", "256"): "frontend/audio.py",
    ("visual_dim", "58"): "frontend/face/codes.py",
    ("num_inference_steps", "16"): "flow/scheduler.py", ("steps", "16"): "flow/scheduler.py",
    ("fps", "25"): "io/export.py", ("video_fps", "25"): "io/export.py",
}


def _code_tokens(path: Path) -> list[tokenize.TokenInfo]:
    source = path.read_text(encoding="utf-8")
    return [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]


def _assigned(tokens: list[tokenize.TokenInfo], index: int) -> str | None:
    """The number assigned to the name at ``index`` (``fps=25``, ``fps: int = 25``), else None."""
    for step in range(1, 6):  # an annotation may stand between the name and "="
        if index + step + 1 >= len(tokens) or tokens[index + step].string in (",", ")", "(", ":=") \
                or tokens[index + step].start[0] != tokens[index].start[0]:
            return None
        if tokens[index + step].string == "=":
            value = tokens[index + step + 1]
            return value.string if value.type == tokenize.NUMBER else None
    return None


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        tokens = _code_tokens(path)
        for index, token in enumerate(tokens):
            if token.type == tokenize.NUMBER and OWNED_NUMBERS.get(token.string, name) != name:
                found.append(f"{name}:{token.start[0]}: {token.string} (owner: {OWNED_NUMBERS[token.string]})")
            value = _assigned(tokens, index) if token.type == tokenize.NAME else None
            owner = None if value is None else OWNED_KEYWORD_VALUES.get((token.string, value))
            if owner is not None and owner != name:
                found.append(f"{name}:{token.start[0]}: {token.string}={value} (owner: {owner})")
    return found


def test_shared_values_are_written_in_their_owner_only():
    assert _violations() == []


def test_the_check_finds_a_literal_outside_its_owner(tmp_path, monkeypatch):
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / "bad.py").write_text('"""24000 in a docstring is text."""\nRATE = 24000\n'
                                                  "def f(fps=25, video_fps: int = 25):\n    return fps  # 93.75 in a comment\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    assert _violations() == ["pipeline/bad.py:2: 24000 (owner: io/audio.py)",
                             "pipeline/bad.py:3: fps=25 (owner: io/export.py)",
                             "pipeline/bad.py:3: video_fps=25 (owner: io/export.py)"]


# Imports run down the data flow: a layer never imports from the layers above it.
ABOVE = {
    "io": ("frontend", "models", "render", "flow", "pipeline", "ui", "data", "training", "eval", "convert"),
    "frontend": ("models", "render", "flow", "pipeline", "ui", "data", "training", "eval", "convert"),
}


def test_imports_run_one_way():
    upward = []
    for layer, above in ABOVE.items():
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                words = line.split()
                if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("omnitalker."):
                    if words[1].split(".")[1] in above:
                        upward.append(f"{path.relative_to(PACKAGE).as_posix()}:{number}: {line.strip()}")
    assert upward == []
