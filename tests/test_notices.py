"""The real-voice notice of the bundled demo says the same in the code, the README and the model card."""

from __future__ import annotations

from pathlib import Path

from omnitalker.notices import DEMO_REAL_VOICE_NOTICE

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_readme_and_model_card_carry_the_real_voice_notice():
    for path in (ROOT / "README.md", ROOT / "weights" / "omnitalker-demo" / "README.md"):
        assert _flat(DEMO_REAL_VOICE_NOTICE) in _flat(path.read_text()), f"{path.relative_to(ROOT)} lacks the notice"


def test_notice_names_the_figures_and_the_way_out():
    for fact in ("synthetic espeak-ng voices", "0.51", "0.47", "F5-TTS", "non-commercial"):
        assert fact in DEMO_REAL_VOICE_NOTICE
