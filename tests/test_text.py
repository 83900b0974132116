"""Text front-end: characters + pinyin tokens, F5-TTS vocab compatibility, default vocab, errors.

python -m pytest tests/test_text.py -q
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from omnitalker.frontend.text import (
    DEFAULT_VOCAB_PATH,
    PAD_ID,
    OmniTalkerTokenizer,
    prepare_reference_text,
    read_vocab,
)

F5_VOCAB_SIZE = 2545
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tokenizer() -> OmniTalkerTokenizer:
    return OmniTalkerTokenizer.default()


@pytest.fixture(scope="module")
def f5_tokenizer(data_dir) -> OmniTalkerTokenizer:
    return OmniTalkerTokenizer.from_vocab_file(data_dir / "f5tts_vocab.txt")


def load_make_vocab():
    spec = importlib.util.spec_from_file_location("make_vocab", REPO_ROOT / "scripts" / "make_vocab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------- tokens


def test_english_is_characters(tokenizer):
    assert tokenizer.tokenize("Hi there, Bob!") == list("Hi there, Bob!")


def test_chinese_is_tone_numbered_pinyin_with_sandhi(tokenizer):
    tokens = tokenizer.tokenize("你好，一个女孩。")
    # 你好: third-tone sandhi ni3 -> ni2; 一个: yi1 -> yi2 before a 4th tone; ü spelled v
    assert tokens == [" ", "ni2", " ", "hao3", "，", " ", "yi2", " ", "ge4", " ", "nv3", " ", "hai2", "。"]


def test_polyphones_follow_the_word(tokenizer):
    assert tokenizer.tokenize("银行") == [" ", "yin2", " ", "hang2"]
    assert tokenizer.tokenize("行走") == [" ", "xing2", " ", "zou3"]


def test_mixed_chinese_english(tokenizer):
    tokens = tokenizer.tokenize("我叫Mary, 我喜欢AI.")
    assert tokens == [
        " ",
        "wo3",
        " ",
        "jiao4",
        " ",
        *"Mary",
        ",",
        " ",
        " ",
        "wo3",
        " ",
        "xi3",
        " ",
        "huan1",
        " ",
        "A",
        "I",
        ".",
    ]


def test_punctuation_and_whitespace_normalisation(tokenizer):
    assert tokenizer.tokenize("\u201cHi\u201d; it\u2019s\n\tok ") == list('"Hi", it\'s ok')


def test_f5_vocab_reproduces_golden_ids(f5_tokenizer, data_dir):
    assert f5_tokenizer.vocab_size == F5_VOCAB_SIZE and f5_tokenizer.vocab[0] == " "
    for flavour in ("v0", "v1"):
        spec = json.loads((data_dir / f"f5tts_{flavour}_tiny.json").read_text(encoding="utf-8"))
        golden = load_file(data_dir / f"f5tts_{flavour}_tiny_io.safetensors")["text_ids"]
        assert [f5_tokenizer.tokenize(text) for text in spec["texts"]] == spec["tokens"]
        assert torch.equal(f5_tokenizer.encode(spec["texts"]), golden)


def test_encode_pads_with_minus_one(tokenizer):
    ids = tokenizer.encode(["ab", "abcd"])
    assert ids.dtype == torch.long and ids.shape == (2, 4)
    assert ids[0, 2:].tolist() == [PAD_ID, PAD_ID] and (ids[1] >= 0).all()
    assert tokenizer.decode(ids[0]) == "ab"
    # already tokenized input (e.g. pinyin prepared offline) is accepted too
    assert torch.equal(tokenizer.encode([tokenizer.tokenize("你好")]), tokenizer.encode("你好"))


def test_unknown_characters_are_named_in_a_warning(tokenizer):
    with pytest.warns(UserWarning, match=r"3 characters are not in the vocabulary .*'∞', '≈'"):
        ids = tokenizer.encode("ok ∞≈∞")
    assert ids[0, -3:].tolist() == [0, 0, 0]  # mapped to the space token, not dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tokenizer.encode("all known 你好")


def test_empty_text_raises(tokenizer):
    for text in ("", "   \n\t"):
        with pytest.raises(ValueError, match="text is empty"):
            tokenizer.tokenize(text)
    with pytest.raises(ValueError, match="reference_text is empty"):
        tokenizer("hello", reference_text=" ")
    with pytest.raises(ValueError, match="must be a string"):
        tokenizer.tokenize(None)


def test_unsupported_script_raises_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match=r"text contains Cyrillic \('Привет'\), which this model cannot speak"):
        tokenizer("Привет, мир")
    with pytest.raises(ValueError, match="only punctuation"):
        tokenizer("?!")
    with pytest.raises(ValueError, match="Japanese kana"):
        tokenizer.tokenize("こんにちは")  # refused on the way in, not only by check_speakable


# --------------------------------------------------------------------------------------------- model input


def test_reference_text_is_closed_as_a_sentence():
    assert prepare_reference_text("Some call me nature") == "Some call me nature. "
    assert prepare_reference_text("Some call me nature. ") == "Some call me nature. "
    assert prepare_reference_text("Hi.") == "Hi. "
    assert prepare_reference_text("你好。") == "你好。"


def test_call_concatenates_reference_and_text(tokenizer):
    ids = tokenizer("你好", reference_text="Some call me nature")
    assert torch.equal(ids, tokenizer.encode("Some call me nature. 你好"))
    batch = tokenizer(["a", "bcd"], reference_text=["x.", "y。"])
    assert torch.equal(batch, tokenizer.encode(["x. a", "y。bcd"]))
    with pytest.raises(ValueError, match="2 texts but 1 reference"):
        tokenizer(["a", "b"], reference_text=["x"])


def test_text_length_is_utf8_bytes(tokenizer):
    assert tokenizer.text_length("abc") == 3
    assert tokenizer.text_length("你好") == 6
    assert tokenizer.text_length("  a  b ") == 3  # measured after normalisation


# --------------------------------------------------------------------------------------------- vocab


def test_default_vocab_contents(tokenizer):
    vocab = set(tokenizer.vocab)
    assert tokenizer.vocab[0] == " " and len(vocab) == tokenizer.vocab_size == 2308
    assert set("abcxyzABCXYZ0123456789.,!?'\"-") <= vocab
    assert set("，。、！？：；（）《》「」…—éüñß") <= vocab
    assert {"ni3", "hao3", "de", "lv4", "nv3", "lve4", "er2", "ê1", "zhuang4", "ma"} <= vocab


def test_default_vocab_covers_every_pinyin_reading(tokenizer):
    from pypinyin.contrib.tone_convert import to_tone3
    from pypinyin.pinyin_dict import pinyin_dict

    readings = {reading for value in pinyin_dict.values() for reading in value.split(",")}
    missing = {to_tone3(reading) for reading in readings} - set(tokenizer.vocab)
    assert not missing


def test_packaged_vocab_is_what_the_script_generates():
    make_vocab = load_make_vocab()
    assert make_vocab.VOCAB_PATH == DEFAULT_VOCAB_PATH
    assert read_vocab(DEFAULT_VOCAB_PATH) == make_vocab.build_vocab()


def test_vocab_file_crlf_and_validation(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b" \r\na\r\nb\r\n")
    assert read_vocab(path) == [" ", "a", "b"]
    with pytest.raises(ValueError, match="start with a space"):
        OmniTalkerTokenizer(["a", " "])
    with pytest.raises(ValueError, match="more than once"):
        OmniTalkerTokenizer([" ", "a", "a"])
    with pytest.raises(FileNotFoundError):
        OmniTalkerTokenizer.from_vocab_file(tmp_path / "missing.txt")


def test_save_and_load_round_trip(tokenizer, f5_tokenizer, tmp_path):
    for source in (tokenizer, f5_tokenizer):
        source.save_pretrained(tmp_path / "pipe" / "tokenizer")
        loaded = OmniTalkerTokenizer.from_pretrained(tmp_path / "pipe", subfolder="tokenizer")
        assert loaded.vocab == source.vocab
        assert torch.equal(
            loaded("你好 world", reference_text="Hi"), source("你好 world", reference_text="Hi")
        )
    config = json.loads((tmp_path / "pipe" / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "OmniTalkerTokenizer" and config["vocab_size"] == F5_VOCAB_SIZE
    # a config that disagrees with its vocab file is caught
    config["vocab_size"] = 7
    (tmp_path / "pipe" / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="vocab_size 7"):
        OmniTalkerTokenizer.from_pretrained(tmp_path / "pipe" / "tokenizer")
    with pytest.raises(FileNotFoundError, match="no vocab.txt"):
        OmniTalkerTokenizer.from_pretrained(tmp_path)
