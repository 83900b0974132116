"""Audio-visual fusion blocks of the OmniTalker DiT (paper §3.2, ablation Table 4).

Every fusion block holds one F5-style ``DiTBlock`` per modality (``.audio`` and ``.visual``: own adaLN-Zero
modulation, q/k/v/out projections and FFN) and differs only in how the two streams exchange information
inside the attention sub-layer. All variants share three properties:

- both streams have the same frame count n (mel rate) and use the same RoPE positions 0..n-1, so frame i
  of the audio and frame i of the video sit at the same rotary position (time-aligned);
- when one stream is absent (``None``) the block is exactly a ``DiTBlock`` on the other one, which is what
  makes a converted F5-TTS checkpoint compute F5-TTS when no video is given;
- ``mask`` (b n, True = valid frame) masks keys in every attention and zeroes padded outputs, so a padded
  batch computes what each item computes alone.

The variants (``FUSION_BLOCKS`` key = the model's ``fusion`` config value):

``mm_attention`` (the paper's choice, MMDiT-style joint attention)
    q, k, v of both modalities are concatenated along the sequence (2n tokens) and attend jointly with
    one softmax; the output is split back and each half goes through its own output projection.

``cross_attention``
    Each stream self-attends (its own DiTBlock attention), then cross-attends to the other stream: queries
    from its own post-self-attention state, keys/values from the other stream's post-self-attention state
    (both LayerNorm-ed, RoPE on both). The cross-attention output projection is zero-initialised, so the
    block starts as two independent DiT blocks. Extra parameters: ``audio_cross`` / ``visual_cross``.

``add`` (element-wise addition, parameter-free)
    Each stream self-attends; the two attention outputs are summed and each stream adds the sum through its
    own adaLN gate: ``x_a += gate_a * (o_a + o_v)`` (and symmetrically for the video).

``linear`` (linear fusion)
    Like ``add`` but the other stream's attention output passes through a learned Linear(d, d) first:
    ``x_a += gate_a * (o_a + W_va o_v)``. ``W`` is zero-initialised (start = no fusion). Extra parameters:
    ``audio_fuse`` (visual -> audio) and ``visual_fuse`` (audio -> visual).
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from omnitalker.models.modules import NORM_EPS, Attention, DiTBlock, masked_fill_rows

Stream = torch.Tensor | None


class FusionBlock(nn.Module, abc.ABC):
    """Base class: one DiTBlock per modality; subclasses implement ``fuse`` for the two-stream case."""

    VISUAL_MODULES = ("visual",)  # what remove_visual drops (subclasses add their exchange layers)

    def __init__(self, dim, num_heads, head_dim, ff_mult=2, dropout=0.1, qk_norm=None, pe_attn_head=None):
        super().__init__()
        block_args = (dim, num_heads, head_dim, ff_mult, dropout, qk_norm, pe_attn_head)
        self.audio = DiTBlock(*block_args)
        self.visual = DiTBlock(*block_args)

    def remove_visual(self) -> None:
        """Drop the visual DiTBlock and the exchange layers: an audio-only block (an F5-TTS DiT block), with no
        visual parameters in its state dict. ``forward`` then accepts only ``visual=None``."""
        for name in self.VISUAL_MODULES:
            setattr(self, name, None)

    def forward(
        self,
        audio: Stream,  # b n d
        visual: Stream,  # b n d
        t: torch.Tensor,  # b d
        mask: torch.Tensor | None = None,  # b n bool
        rope: tuple | None = None,  # (cos, sin), n dh/2 each
    ) -> tuple[Stream, Stream]:
        if visual is None:
            return self.audio(audio, t, mask, rope), None
        if audio is None:
            return None, self.visual(visual, t, mask, rope)
        return self.fuse(audio, visual, t, mask, rope)

    def self_attention_outputs(self, audio, visual, t, mask, rope):
        """Each stream's own modulated self-attention output (b n d) and its adaLN gates."""
        normed_a, gates_a = self.audio.modulate(audio, t)
        normed_v, gates_v = self.visual.modulate(visual, t)
        out_a = self.audio.attn(normed_a, mask=mask, rope=rope)
        out_v = self.visual.attn(normed_v, mask=mask, rope=rope)
        return out_a, gates_a, out_v, gates_v

    @abc.abstractmethod
    def fuse(self, audio, visual, t, mask, rope) -> tuple[torch.Tensor, torch.Tensor]:
        """Both streams present: the variant's exchange of information; returns the new (audio, visual)."""

class MMAttentionFusionBlock(FusionBlock):
    """Joint attention over the concatenated audio and visual tokens (paper: MM-Attention)."""

    def fuse(self, audio, visual, t, mask, rope):
        num_frames = audio.shape[1]
        normed_a, gates_a = self.audio.modulate(audio, t)
        normed_v, gates_v = self.visual.modulate(visual, t)
        attn_a, attn_v = self.audio.attn, self.visual.attn

        query = torch.cat((attn_a.project_query(normed_a, rope), attn_v.project_query(normed_v, rope)), dim=2)
        key_a, value_a = attn_a.project_key_value(normed_a, rope)
        key_v, value_v = attn_v.project_key_value(normed_v, rope)
        key, value = torch.cat((key_a, key_v), dim=2), torch.cat((value_a, value_v), dim=2)  # b h 2n dh
        key_mask = None if mask is None else torch.cat((mask, mask), dim=1)  # b 2n

        joint = Attention.attend(query, key, value, key_mask)  # b h 2n dh
        out_a = attn_a.project_out(joint[:, :, :num_frames], mask)  # b n d
        out_v = attn_v.project_out(joint[:, :, num_frames:], mask)
        return self.audio.finish(audio, out_a, gates_a), self.visual.finish(visual, out_v, gates_v)


class CrossAttention(nn.Module):
    """Pre-norm cross-attention from one stream to the other, with a zero-initialised output projection."""

    def __init__(self, dim, num_heads, head_dim, dropout=0.1, qk_norm=None, pe_attn_head=None):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.context_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.attn = Attention(dim, num_heads, head_dim, dropout, qk_norm, pe_attn_head)
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, x, context, mask=None, rope=None):  # b n d, b n d -> b n d
        return self.attn(self.norm(x), self.context_norm(context), mask=mask, context_mask=mask, rope=rope)


class CrossAttentionFusionBlock(FusionBlock):
    """Self-attention per stream, then cross-attention to the other stream, then the FFN."""

    VISUAL_MODULES = ("visual", "audio_cross", "visual_cross")

    def __init__(self, dim, num_heads, head_dim, ff_mult=2, dropout=0.1, qk_norm=None, pe_attn_head=None):
        super().__init__(dim, num_heads, head_dim, ff_mult, dropout, qk_norm, pe_attn_head)
        self.audio_cross = CrossAttention(dim, num_heads, head_dim, dropout, qk_norm, pe_attn_head)
        self.visual_cross = CrossAttention(dim, num_heads, head_dim, dropout, qk_norm, pe_attn_head)

    def fuse(self, audio, visual, t, mask, rope):
        out_a, gates_a, out_v, gates_v = self.self_attention_outputs(audio, visual, t, mask, rope)
        audio = self.audio.attention_residual(audio, out_a, gates_a)
        visual = self.visual.attention_residual(visual, out_v, gates_v)
        audio, visual = (
            audio + masked_fill_rows(self.audio_cross(audio, visual, mask, rope), mask),
            visual + masked_fill_rows(self.visual_cross(visual, audio, mask, rope), mask),
        )
        return self.audio.feed_forward_residual(audio, gates_a), self.visual.feed_forward_residual(visual, gates_v)


class AddFusionBlock(FusionBlock):
    """Element-wise addition of the two streams' self-attention outputs (no extra parameters)."""

    def fuse(self, audio, visual, t, mask, rope):
        out_a, gates_a, out_v, gates_v = self.self_attention_outputs(audio, visual, t, mask, rope)
        shared = out_a + out_v  # b n d
        return self.audio.finish(audio, shared, gates_a), self.visual.finish(visual, shared, gates_v)


class LinearFusionBlock(FusionBlock):
    """Each stream adds a learned linear map of the other stream's self-attention output."""

    VISUAL_MODULES = ("visual", "audio_fuse", "visual_fuse")

    def __init__(self, dim, num_heads, head_dim, ff_mult=2, dropout=0.1, qk_norm=None, pe_attn_head=None):
        super().__init__(dim, num_heads, head_dim, ff_mult, dropout, qk_norm, pe_attn_head)
        self.audio_fuse = nn.Linear(dim, dim)  # visual -> audio
        self.visual_fuse = nn.Linear(dim, dim)  # audio -> visual
        for layer in (self.audio_fuse, self.visual_fuse):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def fuse(self, audio, visual, t, mask, rope):
        out_a, gates_a, out_v, gates_v = self.self_attention_outputs(audio, visual, t, mask, rope)
        fused_a = out_a + masked_fill_rows(self.audio_fuse(out_v), mask)  # b n d
        fused_v = out_v + masked_fill_rows(self.visual_fuse(out_a), mask)
        return self.audio.finish(audio, fused_a, gates_a), self.visual.finish(visual, fused_v, gates_v)


FUSION_BLOCKS: dict[str, type[FusionBlock]] = {
    "mm_attention": MMAttentionFusionBlock,
    "cross_attention": CrossAttentionFusionBlock,
    "add": AddFusionBlock,
    "linear": LinearFusionBlock,
}
