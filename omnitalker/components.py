"""Pipeline-loadable forms of the components that hold no torch weights: the tokenizer and the renderer.

diffusers' ``save_pretrained`` / ``from_pretrained`` only handle a component whose class derives from
one of its LOADABLE_CLASSES bases (``ModelMixin``, ``SchedulerMixin``, transformers'
``PreTrainedTokenizer`` / ``FeatureExtractionMixin`` / ...); anything else is written to
``model_index.json`` as ``[null, null]`` and silently comes back as ``None``. A weight-free
``ModelMixin`` is not an option either: ``pipe.dtype`` calls ``get_parameter_dtype`` on it and fails
(checked with diffusers 0.42).

So these classes add transformers' ``FeatureExtractionMixin`` (the base diffusers uses for image
processors, which are weight-free components too) behind the project's own class. diffusers only
checks ``issubclass`` to pick the method *names* ``save_pretrained`` / ``from_pretrained``; the
methods themselves resolve to the project class (first in the MRO), so the files on disk are exactly
what that class writes (``vocab.txt`` + ``tokenizer_config.json``; ``renderer_config.json``).

    pipe = OmniTalkerPipeline(tokenizer=OmniTalkerTextProcessor.default(), ...)
    pipe.save_pretrained("out")   # model_index.json: "tokenizer": ["omnitalker.components", "OmniTalkerTextProcessor"]
"""

from __future__ import annotations

from transformers import FeatureExtractionMixin

from omnitalker.models.renderer import WarpRenderer
from omnitalker.phonemes import PhonemeTokenizer
from omnitalker.text import OmniTalkerTokenizer


class OmniTalkerTextProcessor(OmniTalkerTokenizer, FeatureExtractionMixin):
    """``OmniTalkerTokenizer`` that a diffusers pipeline saves and loads (see the module docstring)."""

    def __repr__(self) -> str:  # FeatureExtractionMixin's repr dumps a JSON of the attributes
        return OmniTalkerTokenizer.__repr__(self)


class OmniTalkerPhonemeProcessor(PhonemeTokenizer, FeatureExtractionMixin):
    """``PhonemeTokenizer`` (espeak-ng phonemes, the "durations" text layout) as a loadable component."""

    def __repr__(self) -> str:
        return PhonemeTokenizer.__repr__(self)


def as_pipeline_tokenizer(tokenizer):
    """The same vocabulary as a loadable pipeline component (no-op if it already is one): characters /
    pinyin (``OmniTalkerTokenizer``) or phonemes (``PhonemeTokenizer``)."""
    if isinstance(tokenizer, (OmniTalkerTextProcessor, OmniTalkerPhonemeProcessor)):
        return tokenizer
    if isinstance(tokenizer, PhonemeTokenizer):
        return OmniTalkerPhonemeProcessor(tokenizer.vocab)
    return OmniTalkerTextProcessor(tokenizer.vocab)


class WarpRendererComponent(WarpRenderer, FeatureExtractionMixin):
    """``WarpRenderer`` that a diffusers pipeline saves and loads (``renderer/renderer_config.json``)."""

    def __repr__(self) -> str:
        return WarpRenderer.__repr__(self)


def as_pipeline_renderer(renderer: WarpRenderer | None) -> WarpRenderer | None:
    """A ``WarpRenderer`` with the same config as a loadable component; other renderers pass through
    (a learned renderer is a ``ModelMixin`` and loads as it is)."""
    if renderer is None or isinstance(renderer, WarpRendererComponent) or type(renderer) is not WarpRenderer:
        return renderer
    return WarpRendererComponent.from_config(renderer.config)
