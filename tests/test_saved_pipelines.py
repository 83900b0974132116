"""Saved pipeline folders keep loading: model_index.json names written before the tokenizer and renderer classes
became loadable themselves (``omnitalker.components``) resolve to today's classes; a new save names the new ones."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.frontend.text import OmniTalkerTokenizer
from omnitalker.pipeline import OmniTalkerPipeline
from omnitalker.render.warp import WarpRenderer
from tests.pipeline_fixtures import dummy_pipeline

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "weights" / "omnitalker-demo"
OLD_NAMES = {
    "tokenizer": ["omnitalker.components", "OmniTalkerTextProcessor"],
    "renderer": ["omnitalker.components", "WarpRendererComponent"],
}


def test_the_demo_as_saved_before_the_tree_move_loads(tmp_path):
    """The bundled demo as it was committed before the tokenizer and renderer became loadable themselves: its
    model_index and component configs name ``omnitalker.components`` classes (users' saved copies still do)."""
    shutil.copytree(DEMO, tmp_path / "demo")
    index_path = tmp_path / "demo" / "model_index.json"
    index = json.loads(index_path.read_text())
    assert index["tokenizer"] == ["omnitalker.frontend.phonemes", "PhonemeTokenizer"], "the committed demo is new"
    index.update(tokenizer=["omnitalker.components", "OmniTalkerPhonemeProcessor"], renderer=OLD_NAMES["renderer"])
    index_path.write_text(json.dumps(index, indent=2))
    for name, key, old in (("tokenizer/tokenizer_config.json", "tokenizer_class", "OmniTalkerPhonemeProcessor"),
                           ("renderer/renderer_config.json", "_class_name", "WarpRendererComponent")):
        path = tmp_path / "demo" / name
        path.write_text(json.dumps({**json.loads(path.read_text()), key: old}, indent=2))
    pipe = OmniTalkerPipeline.from_pretrained(tmp_path / "demo")
    assert type(pipe.tokenizer) is PhonemeTokenizer and type(pipe.renderer) is WarpRenderer
    assert pipe.tokenizer.vocab_size == json.loads((DEMO / "tokenizer" / "tokenizer_config.json").read_text())["vocab_size"]
    assert pipe.renderer.config.output_size == json.loads((DEMO / "renderer" / "renderer_config.json").read_text())["output_size"]


def test_a_folder_saved_with_old_names_loads(tmp_path):
    pipe = dummy_pipeline()
    pipe.save_pretrained(tmp_path / "pipe")
    index_path = tmp_path / "pipe" / "model_index.json"
    index = {**json.loads(index_path.read_text()), **OLD_NAMES}
    index_path.write_text(json.dumps(index, indent=2))
    config_path = tmp_path / "pipe" / "renderer" / "renderer_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "_class_name": "WarpRendererComponent"}))
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    assert type(loaded.tokenizer) is OmniTalkerTokenizer and loaded.tokenizer.vocab == pipe.tokenizer.vocab
    assert type(loaded.renderer) is WarpRenderer and loaded.renderer.config.output_size == pipe.renderer.config.output_size
    loaded.save_pretrained(tmp_path / "again")  # re-saving writes the new names
    again = json.loads((tmp_path / "again" / "model_index.json").read_text())
    assert again["tokenizer"] == ["omnitalker.frontend.text", "OmniTalkerTokenizer"]
    assert again["renderer"] == ["omnitalker.render.warp", "WarpRenderer"]


def test_a_new_save_names_the_new_modules_and_loads_in_a_fresh_process(tmp_path):
    pipe = dummy_pipeline(text_layout="durations")
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["tokenizer"] == ["omnitalker.frontend.phonemes", "PhonemeTokenizer"]
    assert index["renderer"] == ["omnitalker.render.warp", "WarpRenderer"]
    assert index["duration_predictor"] == ["omnitalker.models.duration_predictor", "DurationPredictor"]
    assert not any("omnitalker.components" in json.dumps(value) for value in index.values())
    # nothing but the pipeline class is imported first: diffusers imports each component's module itself
    code = ("import sys; from omnitalker.pipeline import OmniTalkerPipeline; "
            "pipe = OmniTalkerPipeline.from_pretrained(sys.argv[1]); "
            "print(type(pipe.tokenizer).__name__, type(pipe.renderer).__name__, type(pipe.transformer).__name__)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "pipe")], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["PhonemeTokenizer", "WarpRenderer", "OmniTalkerTransformer"]
