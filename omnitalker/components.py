"""Compatibility names for pipeline folders saved before the tokenizer and renderer classes became loadable
themselves. It exists only because a saved ``model_index.json`` (``weights/omnitalker-demo``, users' folders) names
``["omnitalker.components", "OmniTalkerTextProcessor"]`` and the like, and diffusers looks the class up in that
module (``omnitalker.pipeline.components`` imports it with the pipeline). A folder saved now names the real classes;
nothing else imports these names.

Why those classes derive from transformers' ``FeatureExtractionMixin``: diffusers' ``save_pretrained`` /
``from_pretrained`` only handle a component whose class derives from one of its LOADABLE_CLASSES bases
(``ModelMixin``, ``SchedulerMixin``, transformers' ``PreTrainedTokenizer`` / ``FeatureExtractionMixin`` / ...);
anything else is written as ``[null, null]`` and silently comes back as ``None``. A weight-free ``ModelMixin``
fails in ``pipe.dtype`` (checked with diffusers 0.42). diffusers only checks ``issubclass`` to pick the method
names; the methods resolve to the project class (first in the MRO), so the files on disk are what that class
writes, and its ``__repr__`` (not the mixin's JSON dump) is kept.
"""

# diffusers picks the loading methods by looking the loadable bases up in the module it loads a class from
from transformers import FeatureExtractionMixin  # noqa: F401

from omnitalker.frontend.phonemes import PhonemeTokenizer as OmniTalkerPhonemeProcessor
from omnitalker.frontend.text import OmniTalkerTokenizer as OmniTalkerTextProcessor
from omnitalker.render.warp import WarpRenderer as WarpRendererComponent

__all__ = ["OmniTalkerPhonemeProcessor", "OmniTalkerTextProcessor", "WarpRendererComponent"]
