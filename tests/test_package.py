"""The package's public surface: cheap to import, every advertised name resolves."""

import subprocess
import sys


def test_import_loads_no_model_code():
    code = "import sys, omnitalker; print('torch' in sys.modules, 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_every_public_name_resolves():
    import omnitalker

    for name in omnitalker.__all__:
        assert getattr(omnitalker, name) is not None, name
