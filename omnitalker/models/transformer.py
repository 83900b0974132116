"""OmniTalkerTransformer: the dual-branch audio-visual flow-matching DiT of OmniTalker (paper §3, Fig. 1).

    text ids ──> TextEmbedding (ConvNeXt-V2, shared) ──┬──────────────────────┐
    [x_t^audio | audio prompt | text] -> audio_embed ──┤                      │
    [x_t^visual | visual prompt | text] -> visual_embed┘                      │
        -> num_fusion_layers fusion blocks (MM-attention by default; fusion.py)
        -> num_audio_layers DiT blocks -> AdaLN -> Linear -> audio velocity  (b n mel_dim)
        -> num_visual_layers DiT blocks -> AdaLN -> Linear -> visual velocity (b n visual_dim)

Both streams run at the mel frame rate (93.75 fps) with the same frame count n; either may be absent. With
the visual stream absent, the audio path is exactly F5-TTS's DiT (same names, init and arithmetic), which is
what ``omnitalker.convert.f5tts`` relies on. Flow time: t = 0 noise, t = 1 data; the output is the predicted
velocity x1 - x0 of each present stream.

Quick check (tiny random model):

    python -c "import torch; from omnitalker.models.transformer import OmniTalkerTransformer as T; \
m = T.from_named_config('tiny'); x = torch.randn(1, 50, 100); \
print(m(audio=x, audio_cond=x, text_ids=torch.tensor([[1, 2, 3]]), timestep=0.5).audio.shape)"

Parameter counts (exact, ``num_parameters()`` on the meta device; test_transformer.py checks them):
``base`` 784,644,766; ``demo`` 16,752,798; ``small`` 4,649,374; ``tiny`` 161,918 (default vocab, 2308 tokens).
A converted F5-TTS Base (vocab 2545, 22 fusion + 4 + 4 blocks) has 784,766,110; without the visual stream and
the extra audio blocks (``visual_stream=False, num_audio_layers=0``) 337,096,804, exactly F5-TTS Base.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from omnitalker.frontend.audio import N_MELS
from omnitalker.frontend.face.codes import VISUAL_CODE_DIM
from omnitalker.frontend.text import PAD_ID
from omnitalker.models.configs import DEFAULT_TEXT_NUM_EMBEDS, load_named_config
from omnitalker.models.fusion import FUSION_BLOCKS
from omnitalker.models.modules import (
    TEXT_LAYOUTS,
    AdaLayerNormFinal,
    DiTBlock,
    InputEmbedding,
    RotaryEmbedding,
    TextEmbedding,
    TimestepEmbedding,
    masked_fill_rows,
)


@dataclass
class OmniTalkerTransformerOutput(BaseOutput):
    """Predicted velocities (x1 - x0) of the present streams; an absent stream gives ``None``.

    audio: b n mel_dim; visual: b n visual_dim.
    """

    audio: torch.Tensor | None = None
    visual: torch.Tensor | None = None


class OmniTalkerTransformer(ModelMixin, ConfigMixin):
    """Dual-branch DiT predicting the flow-matching velocity of mel frames and visual codes.

    Args:
        mel_dim / visual_dim: channels of the audio (log-mel) and visual-code streams.
        text_num_embeds: vocabulary size (the table has one more row: the filler 0); text_dim: its width.
        text_conv_layers: ConvNeXt-V2 blocks of the text encoder. text_mask_padding: zero filler positions in
            the text encoder (F5 v1 True, v0 False).
        text_layout: which frames each token's features land on (modules.TextEmbedding): "filler" (the paper /
            F5: filler-padded, alignment learned), "average" (tokens spread evenly), "durations" (token k
            repeated for its given number of frames; ``forward`` then needs ``text_durations``). None = the
            legacy flag: ``text_average_upsampling`` True -> "average", else "filler" (old configs still load).
        dim, num_heads, head_dim, ff_mult, dropout: transformer width, heads, head size, FFN ratio, dropout.
        num_fusion_layers: audio-visual fusion blocks; num_audio_layers / num_visual_layers: single-modality
            DiT blocks of each branch after them.
        fusion: "mm_attention" | "cross_attention" | "add" | "linear" (see fusion.py; paper Table 4).
        pe_attn_head: RoPE on the first ``pe_attn_head`` heads only (F5 v0: 1); None = all heads (F5 v1).
        conv_pos_kernel / conv_pos_groups: the convolutional position embedding of each stream.
        max_text_positions: longest supported sequence in frames (8192 = 87 s at 93.75 fps).
        qk_norm: None or "rms_norm" on queries and keys.
        visual_stream: False builds the audio branch only (no visual embedding, visual halves of the fusion
            blocks, visual blocks or head: e.g. a converted F5-TTS for TTS, ``omnitalker.convert.pipeline``);
            ``forward`` then refuses ``visual``. The config keeps ``visual_dim`` for the pipeline's code layout.
        visual_mean / visual_std: per-dimension statistics of the training visual codes (``visual_dim``
            floats each). The model works on normalised codes ``(codes - mean) / std``: raw codes are
            radians and face-size fractions (std ~0.01-0.1), far below the unit noise of flow matching, so
            without this the visual loss only sees noise. ``normalize_visual`` / ``denormalize_visual``
            convert; the loss and the sampler call them. None = codes used as they are.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        *,
        mel_dim: int = N_MELS,
        visual_dim: int = VISUAL_CODE_DIM,
        text_num_embeds: int = DEFAULT_TEXT_NUM_EMBEDS,
        text_dim: int = 512,
        text_conv_layers: int = 4,
        text_mask_padding: bool = True,
        text_average_upsampling: bool = False,
        text_layout: str | None = None,
        dim: int = 1024,
        num_heads: int = 16,
        head_dim: int = 64,
        ff_mult: float = 2,
        dropout: float = 0.1,
        num_fusion_layers: int = 22,
        num_audio_layers: int = 4,
        num_visual_layers: int = 4,
        fusion: str = "mm_attention",
        pe_attn_head: int | None = None,
        conv_pos_kernel: int = 31,
        conv_pos_groups: int = 16,
        max_text_positions: int = 8192,
        qk_norm: str | None = None,
        visual_mean: list[float] | None = None,
        visual_std: list[float] | None = None,
        visual_stream: bool = True,
    ):
        super().__init__()
        if (visual_mean is None) != (visual_std is None):
            raise ValueError("give both visual_mean and visual_std (the visual-code statistics), or neither.")
        if visual_mean is not None:
            if len(visual_mean) != visual_dim or len(visual_std) != visual_dim:
                raise ValueError(f"visual_mean / visual_std need {visual_dim} values each (one per visual dim).")
            if min(visual_std) <= 0:
                raise ValueError("visual_std values must be positive.")
        # Not in the state dict: the statistics live in config.json (keeps checkpoints' key sets unchanged).
        stats = (visual_mean, visual_std) if visual_mean is not None else ([0.0] * visual_dim, [1.0] * visual_dim)
        self.register_buffer("visual_mean_buffer", torch.tensor(stats[0], dtype=torch.float32), persistent=False)
        self.register_buffer("visual_std_buffer", torch.tensor(stats[1], dtype=torch.float32), persistent=False)
        resolve_text_layout(text_layout, text_average_upsampling)  # validates the pair
        if fusion not in FUSION_BLOCKS:
            raise ValueError(f"fusion must be one of {sorted(FUSION_BLOCKS)}, got {fusion!r}.")
        if head_dim % 2 != 0:
            raise ValueError(f"head_dim must be even for rotary embeddings, got {head_dim}.")
        if pe_attn_head is not None and not 1 <= pe_attn_head <= num_heads:
            raise ValueError(f"pe_attn_head must be None or in [1, num_heads={num_heads}], got {pe_attn_head}.")
        for name, value in (("mel_dim", mel_dim), ("visual_dim", visual_dim), ("text_num_embeds", text_num_embeds),
                            ("text_dim", text_dim), ("dim", dim), ("num_heads", num_heads),
                            ("max_text_positions", max_text_positions)):
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}.")

        block_args = (dim, num_heads, head_dim, ff_mult, dropout, qk_norm, pe_attn_head)
        self.time_embed = TimestepEmbedding(dim)
        self.text_embed = TextEmbedding(text_num_embeds, text_dim, text_conv_layers, text_mask_padding,
                                        resolve_text_layout(text_layout, text_average_upsampling))
        self.audio_embed = InputEmbedding(mel_dim, text_dim, dim, conv_pos_kernel, conv_pos_groups)
        self.visual_embed = InputEmbedding(visual_dim, text_dim, dim, conv_pos_kernel, conv_pos_groups)
        self.rotary_embed = RotaryEmbedding(head_dim)

        self.fusion_blocks = nn.ModuleList([FUSION_BLOCKS[fusion](*block_args) for _ in range(num_fusion_layers)])
        self.audio_blocks = nn.ModuleList([DiTBlock(*block_args) for _ in range(num_audio_layers)])
        self.visual_blocks = nn.ModuleList([DiTBlock(*block_args) for _ in range(num_visual_layers)])

        self.audio_norm_out = AdaLayerNormFinal(dim)
        self.audio_proj_out = nn.Linear(dim, mel_dim)
        self.visual_norm_out = AdaLayerNormFinal(dim)
        self.visual_proj_out = nn.Linear(dim, visual_dim)
        if not visual_stream:  # audio branch only: no visual parameters at all
            self.visual_embed = self.visual_blocks = self.visual_norm_out = self.visual_proj_out = None
            for block in self.fusion_blocks:
                block.remove_visual()

        self.gradient_checkpointing = False
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """adaLN-Zero (F5-TTS / DiT): every block starts as the identity and both outputs start at zero."""
        for module in self.modules():
            if isinstance(module, DiTBlock):
                nn.init.zeros_(module.attn_norm.linear.weight)
                nn.init.zeros_(module.attn_norm.linear.bias)
        heads = (self.audio_norm_out, self.audio_proj_out, self.visual_norm_out, self.visual_proj_out)
        for layer in (getattr(head, "linear", head) for head in heads if head is not None):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def from_named_config(cls, name: str, **overrides) -> OmniTalkerTransformer:
        """Build a randomly initialised model from a shipped config ("base", "small", "demo", "tiny")."""
        config = load_named_config(name)
        valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise ValueError(f"Unknown config keys {unknown}; valid keys: {sorted(valid)}.")
        return cls(**{**config, **overrides})

    @property
    def text_layout(self) -> str:
        """The resolved text layout: "filler", "average" or "durations"."""
        return self.text_embed.layout

    # ------------------------------------------------------------------------------------------------------

    def check_text_durations(self, text_ids: torch.Tensor, text_durations: torch.Tensor | None, frames: int,
                             attention_mask: torch.Tensor | None) -> None:
        """``text_durations`` must be given exactly for the "durations" layout, match ``text_ids`` (b nt, long,
        >= 0, 0 on padding) and cover each sample's valid frames exactly."""
        if self.text_layout != "durations":
            if text_durations is not None:
                raise ValueError(f"`text_durations` is only used by the 'durations' text layout; this model's "
                                 f"layout is {self.text_layout!r}.")
            return
        if text_durations is None:
            raise ValueError("this model lays tokens out by duration (text_layout='durations'): pass "
                             "`text_durations` (frames per token, same shape as text_ids).")
        if not isinstance(text_durations, torch.Tensor) or text_durations.is_floating_point() \
                or tuple(text_durations.shape) != tuple(text_ids.shape):
            raise ValueError(f"`text_durations` must be an integer tensor of shape {tuple(text_ids.shape)} "
                             f"(frames per token), got {_describe(text_durations)}.")
        if bool((text_durations < 0).any()) or bool(((text_ids == PAD_ID) & (text_durations != 0)).any()):
            raise ValueError("`text_durations` must be >= 0, and 0 on padding tokens (text_ids == -1).")
        totals = text_durations.sum(dim=1)  # b
        valid = attention_mask.sum(dim=1) if attention_mask is not None else torch.full_like(totals, frames)
        if not torch.equal(totals.to(valid.device), valid.to(totals.dtype)):
            raise ValueError(f"`text_durations` must sum to each sample's valid frame count: got sums "
                             f"{totals.tolist()} for {valid.tolist()} frames.")

    def check_inputs(self, audio, audio_cond, visual, visual_cond, text_ids, timestep, attention_mask,
                     drop_flags: dict, check_values: bool = True) -> tuple[int, int]:
        """Validate the forward inputs; returns (batch, frames). Raises ValueError naming the problem.
        ``check_values=False`` keeps the shape and type checks and skips those that read tensor values (token
        id range, empty texts, timestep range, empty mask rows): they synchronise with the device."""
        cfg = self.config
        if audio is None and visual is None:
            raise ValueError("Both streams are absent: pass `audio` (noisy mel) and/or `visual` (noisy codes).")
        if visual is not None and not cfg.get("visual_stream", True):
            raise ValueError("This transformer has no visual stream (visual_stream=False: an audio-only model such "
                             "as a converted F5-TTS): call it without `visual`, or animate the face with a model "
                             "that has a trained visual branch (OmniTalkerPipeline mode='cascade').")
        shapes = {}
        for name, stream, cond, channels in (("audio", audio, audio_cond, cfg.mel_dim),
                                             ("visual", visual, visual_cond, cfg.visual_dim)):
            if stream is None:
                if cond is not None:
                    raise ValueError(f"`{name}_cond` was given without `{name}`; pass both or neither.")
                continue
            for label, tensor in ((name, stream), (f"{name}_cond", cond)):
                if tensor is None:
                    continue
                if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                    raise ValueError(f"`{label}` must be a floating-point tensor, got {_describe(tensor)}.")
                if tensor.ndim != 3 or tensor.shape[-1] != channels:
                    raise ValueError(f"`{label}` must have shape (batch, frames, {channels}), got {tuple(tensor.shape)}.")
            if cond is not None and cond.shape != stream.shape:
                raise ValueError(f"`{name}_cond` shape {tuple(cond.shape)} must equal `{name}` shape {tuple(stream.shape)}.")
            shapes[name] = tuple(stream.shape[:2])
        if len(set(shapes.values())) > 1:
            raise ValueError(f"audio and visual must share batch size and frame count, got {shapes}; "
                             "upsample the visual codes to the mel frame rate first.")
        batch, frames = next(iter(shapes.values()))
        if frames < 1:
            raise ValueError("The streams have 0 frames.")
        if frames > cfg.max_text_positions:
            raise ValueError(f"{frames} frames exceed max_text_positions={cfg.max_text_positions}; "
                             "shorten the reference/target or generate in chunks.")

        if not isinstance(text_ids, torch.Tensor) or text_ids.dtype == torch.bool or text_ids.is_floating_point() \
                or text_ids.is_complex():
            raise ValueError(f"`text_ids` must be an integer (long) tensor of token ids, got {_describe(text_ids)}.")
        if text_ids.ndim != 2 or text_ids.shape[0] != batch:
            raise ValueError(f"`text_ids` must have shape ({batch}, text_len), got {tuple(text_ids.shape)}.")
        if text_ids.shape[1] == 0:
            raise ValueError("Empty text: every sample needs at least one token (text_ids has no columns).")
        if check_values:
            self._check_text_id_values(text_ids)

        if isinstance(timestep, torch.Tensor):
            if not timestep.is_floating_point() or timestep.ndim > 1 or (timestep.ndim == 1 and
                                                                       timestep.shape[0] != batch):
                raise ValueError(f"`timestep` must be a float scalar or a ({batch},) float tensor, "
                                 f"got {_describe(timestep)}.")
            low, high = (float(timestep.min()), float(timestep.max())) if check_values else (0.0, 0.0)
        elif isinstance(timestep, (int, float)) and not isinstance(timestep, bool):
            low = high = float(timestep)
        else:
            raise ValueError(f"`timestep` must be a float or a tensor, got {type(timestep).__name__}.")
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"`timestep` must lie in [0, 1] (t=0 noise, t=1 data), got range [{low}, {high}].")

        if attention_mask is not None:
            if not isinstance(attention_mask, torch.Tensor) or attention_mask.dtype != torch.bool:
                raise ValueError(f"`attention_mask` must be a bool tensor (True = valid frame), got "
                                 f"{_describe(attention_mask)}.")
            if tuple(attention_mask.shape) != (batch, frames):
                raise ValueError(f"`attention_mask` must have shape ({batch}, {frames}), got "
                                 f"{tuple(attention_mask.shape)}.")
            if check_values and not bool(attention_mask.any(dim=1).all()):
                raise ValueError("`attention_mask` has a sample with no valid frame.")

        for name, flag in drop_flags.items():
            if isinstance(flag, bool):
                continue
            if not isinstance(flag, torch.Tensor) or flag.dtype != torch.bool or tuple(flag.shape) != (batch,):
                raise ValueError(f"`{name}` must be a bool or a ({batch},) bool tensor, got {_describe(flag)}.")
        return batch, frames

    def _check_text_id_values(self, text_ids: torch.Tensor) -> None:
        """Token ids in the model's vocabulary, and no sample made only of padding (reads the values)."""
        if bool((text_ids == PAD_ID).all(dim=1).any()):
            raise ValueError("Empty text: every sample needs at least one token (text_ids are all padding -1).")
        num_embeds = self.config.text_num_embeds
        if bool(((text_ids < PAD_ID) | (text_ids >= num_embeds)).any()):
            raise ValueError(f"`text_ids` must lie in [0, {num_embeds - 1}] (or -1 for padding), got values "
                             f"in [{int(text_ids.min())}, {int(text_ids.max())}]; is the tokenizer's vocab the model's?")

    def _check_text_embeds(self, text_embeds, batch: int, frames: int, drop_text) -> None:
        expected = (batch, frames, self.config.text_dim)
        if not isinstance(text_embeds, torch.Tensor) or tuple(text_embeds.shape) != expected:
            raise ValueError(f"`text_embeds` must be a tensor of shape {expected} (from embed_text), got "
                             f"{_describe(text_embeds)}.")
        if drop_text is not None:
            raise ValueError("`drop_text` has no effect with `text_embeds`: pass it to embed_text() instead.")

    def embed_text(
        self,
        text_ids: torch.Tensor,  # b nt long, batch padding -1
        num_frames: int,
        drop_text: bool | torch.Tensor = False,  # bool or b bool
        attention_mask: torch.Tensor | None = None,  # b n bool
        text_durations: torch.Tensor | None = None,  # b nt long ("durations" layout)
    ) -> torch.Tensor:
        """The frame-aligned text features (b n dt) that ``forward`` computes from ``text_ids``; pass them back
        as ``text_embeds=`` to run the text encoder once per sampling call instead of once per ODE step."""
        if not isinstance(text_ids, torch.Tensor) or text_ids.ndim != 2:
            raise ValueError(f"`text_ids` must be a (batch, text_len) tensor, got {_describe(text_ids)}.")
        if not isinstance(num_frames, int) or not 1 <= num_frames <= self.config.max_text_positions:
            raise ValueError(f"num_frames must be an int in [1, {self.config.max_text_positions}], got {num_frames!r}.")
        if not isinstance(drop_text, bool) and (not isinstance(drop_text, torch.Tensor) or drop_text.dtype != torch.bool
                                                 or tuple(drop_text.shape) != (text_ids.shape[0],)):
            raise ValueError(f"`drop_text` must be a bool or a ({text_ids.shape[0]},) bool tensor, got "
                             f"{_describe(drop_text)}.")
        self._check_text_id_values(text_ids)  # once per sampling run: the embedding lookup needs valid ids
        self.check_text_durations(text_ids, text_durations, num_frames, attention_mask)
        flag = _per_sample(drop_text, text_ids.shape[0], text_ids.device)
        return self.text_embed(text_ids, num_frames, flag, attention_mask, text_durations)  # b n dt

    def _run_block(self, block: nn.Module, *args):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(block, *args)
        return block(*args)

    def _branch_output(self, hidden, blocks, norm_out, proj_out, t, mask, rope) -> torch.Tensor:
        for block in blocks:
            hidden = self._run_block(block, hidden, t, mask, rope)
        return masked_fill_rows(proj_out(norm_out(hidden, t)), mask)

    def normalize_visual(self, codes: torch.Tensor | None) -> torch.Tensor | None:
        """Raw visual codes (..., visual_dim) -> the model's normalised space (identity without statistics)."""
        if codes is None or self.config.visual_mean is None:
            return codes
        mean = self.visual_mean_buffer.to(device=codes.device, dtype=codes.dtype)
        std = self.visual_std_buffer.to(device=codes.device, dtype=codes.dtype)
        return (codes - mean) / std

    def denormalize_visual(self, codes: torch.Tensor | None) -> torch.Tensor | None:
        """Inverse of :meth:`normalize_visual`."""
        if codes is None or self.config.visual_mean is None:
            return codes
        mean = self.visual_mean_buffer.to(device=codes.device, dtype=codes.dtype)
        std = self.visual_std_buffer.to(device=codes.device, dtype=codes.dtype)
        return codes * std + mean

    def forward(
        self,
        *,
        audio: torch.Tensor | None = None,  # b n mel_dim     noisy mel x_t
        audio_cond: torch.Tensor | None = None,  # b n mel_dim   clean mel where known, 0 where generated
        visual: torch.Tensor | None = None,  # b n visual_dim  noisy visual codes x_t
        visual_cond: torch.Tensor | None = None,  # b n visual_dim
        text_ids: torch.Tensor,  # b nt long, batch padding -1
        timestep: torch.Tensor | float,  # b or scalar, t=0 noise, t=1 data
        attention_mask: torch.Tensor | None = None,  # b n bool, True = valid frame
        drop_text: bool | torch.Tensor = False,  # per-sample CFG drops (bool or b bool)
        drop_audio_cond: bool | torch.Tensor = False,
        drop_visual_cond: bool | torch.Tensor = False,
        return_dict: bool = True,
        text_embeds: torch.Tensor | None = None,  # b n dt from embed_text(); skips the text encoder
        text_durations: torch.Tensor | None = None,  # b nt long, frames per token ("durations" layout)
        check_values: bool = True,  # False: shape/type checks only, no host syncs (sampling after its first step)
    ) -> OmniTalkerTransformerOutput | tuple:
        """Predict the velocities. ``text_embeds`` (optional) is ``embed_text(text_ids, n, drop_text,
        attention_mask)`` computed once and reused across ODE steps (the text branch does not depend on t);
        the CFG text drop is then already in it, so ``drop_text`` must stay False."""
        drops = {"drop_text": drop_text, "drop_audio_cond": drop_audio_cond, "drop_visual_cond": drop_visual_cond}
        batch, frames = self.check_inputs(audio, audio_cond, visual, visual_cond, text_ids, timestep,
                                          attention_mask, drops, check_values)
        device, dtype = text_ids.device, self.audio_proj_out.weight.dtype
        drop_text, drop_audio_cond, drop_visual_cond = (_per_sample(flag, batch, device) for flag in drops.values())

        timestep = torch.as_tensor(timestep, device=device)
        t = self.time_embed(timestep.expand(batch) if timestep.ndim == 0 else timestep)  # b d
        if text_embeds is None:
            self.check_text_durations(text_ids, text_durations, frames, attention_mask)
            text = self.text_embed(text_ids, frames, drop_text, attention_mask, text_durations)  # b n dt
        else:
            self._check_text_embeds(text_embeds, batch, frames, drop_text)
            text = text_embeds
        mask = attention_mask

        hidden_a = hidden_v = None
        if audio is not None:
            audio_cond = torch.zeros_like(audio) if audio_cond is None else audio_cond
            hidden_a = self.audio_embed(audio.to(dtype), audio_cond.to(dtype), text, drop_audio_cond, mask)  # b n d
        if visual is not None:
            visual_cond = torch.zeros_like(visual) if visual_cond is None else visual_cond
            hidden_v = self.visual_embed(visual.to(dtype), visual_cond.to(dtype), text, drop_visual_cond, mask)

        rope = self.rotary_embed(frames)  # (cos, sin), n dh/2 each
        for block in self.fusion_blocks:
            hidden_a, hidden_v = self._run_block(block, hidden_a, hidden_v, t, mask, rope)

        out_a = out_v = None
        if hidden_a is not None:
            out_a = self._branch_output(hidden_a, self.audio_blocks, self.audio_norm_out, self.audio_proj_out,
                                        t, mask, rope)  # b n mel_dim
        if hidden_v is not None:
            out_v = self._branch_output(hidden_v, self.visual_blocks, self.visual_norm_out, self.visual_proj_out,
                                        t, mask, rope)  # b n visual_dim
        if not return_dict:
            return out_a, out_v
        return OmniTalkerTransformerOutput(audio=out_a, visual=out_v)


def resolve_text_layout(text_layout: str | None, text_average_upsampling: bool) -> str:
    """The text layout a config means: ``text_layout`` if set, else the legacy ``text_average_upsampling`` flag."""
    if text_layout is None:
        return "average" if text_average_upsampling else "filler"
    if text_layout not in TEXT_LAYOUTS:
        raise ValueError(f"text_layout must be one of {TEXT_LAYOUTS} (or None), got {text_layout!r}.")
    if text_average_upsampling and text_layout != "average":
        raise ValueError(f"text_average_upsampling=True contradicts text_layout={text_layout!r}; drop the old flag.")
    return text_layout


def _per_sample(flag: bool | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor | None:
    """A drop flag as a (b,) bool tensor; None when nothing is dropped (keeps the common path cheap)."""
    if isinstance(flag, bool):
        return torch.full((batch,), True, device=device) if flag else None
    return flag.to(device)


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={value.dtype})"
    return type(value).__name__
