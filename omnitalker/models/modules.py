"""Building blocks of the OmniTalker DiT, shared by both branches.

The audio side is laid out so that released F5-TTS checkpoints load into it: the module and
parameter names, the initialisation and the arithmetic follow F5-TTS (reference/f5tts_vocos.md §1).

ein notation:
b - batch, n - frames (mel rate), nt - text tokens, d - model dim, h - heads, dh - head dim, dt - text dim

What lives here:
- TimestepEmbedding: sinusoidal(256, scale 1000) -> Linear -> SiLU -> Linear
- TextEmbedding: ids (+1, filler 0) fitted to n frames, absolute sinusoidal positions, ConvNeXt-V2 blocks
- InputEmbedding: Linear([x | cond | text]) + ConvPositionEmbedding (grouped convs + Mish), per modality
- RotaryEmbedding + apply_rotary: interleaved ("rotate every two") RoPE with a persistent inv_freq buffer
- AdaLayerNorm (adaLN-Zero, 6 chunks), AdaLayerNormFinal (scale, shift), FeedForward (tanh GELU)
- Attention (q/k/v/out projections, optional qk RMSNorm) and masked SDPA
- DiTBlock: one single-modality block, also the per-modality half of every fusion block
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TIME_FREQ_DIM = 256  # sinusoidal features of the flow time (F5-TTS)
TIME_SCALE = 1000.0  # t in [0, 1] is scaled like a diffusion step index before the sinusoids
ROPE_THETA = 10000.0
NORM_EPS = 1e-6  # every LayerNorm / RMSNorm in F5-TTS uses 1e-6
GRN_EPS = 1e-6
CONVNEXT_KERNEL = 7
CONVNEXT_MULT = 2  # ConvNeXt-V2 FFN width = 2 x text_dim (paper Table 5: 512 -> 1024)


# ---------------------------------------------------------------------------------------------------------
# small helpers


def sinusoidal_table(positions: torch.Tensor, dim: int, theta: float = ROPE_THETA) -> torch.Tensor:
    """Absolute position table ``cat(cos(p*w), sin(p*w))`` with ``w_i = theta^(-2i/dim)`` (F5 text table)."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, device=positions.device)[: dim // 2].float() / dim))
    angles = torch.outer(positions.float(), freqs)  # n dim/2
    return torch.cat([angles.cos(), angles.sin()], dim=-1)  # n dim


def masked_fill_rows(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Zero the rows of ``x`` (b n d) where ``keep`` (b n) is False; no-op when keep is None."""
    if keep is None:
        return x
    return x.masked_fill(~keep.unsqueeze(-1), 0.0)


# ---------------------------------------------------------------------------------------------------------
# time


class SinusoidalTimeFeatures(nn.Module):
    """``cat(sin(s*t*w), cos(s*t*w))`` with ``w_i = exp(-i*ln(1e4)/(half-1))`` and s = 1000 (no parameters)."""

    def __init__(self, dim: int = TIME_FREQ_DIM, scale: float = TIME_SCALE):
        super().__init__()
        self.dim = dim
        self.scale = scale

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # b -> b dim
        half = self.dim // 2
        step = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device).float() * -step)
        angles = self.scale * t.float().unsqueeze(1) * freqs.unsqueeze(0)  # b half
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    """Flow time t in [0, 1] -> conditioning vector (b d), shared by every AdaLN of both branches."""

    def __init__(self, dim: int, freq_dim: int = TIME_FREQ_DIM):
        super().__init__()
        self.time_embed = SinusoidalTimeFeatures(freq_dim)
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:  # b -> b d
        features = self.time_embed(t).to(self.time_mlp[0].weight.dtype)  # b freq_dim
        return self.time_mlp(features)


# ---------------------------------------------------------------------------------------------------------
# text


class GRN(nn.Module):
    """ConvNeXt-V2 global response normalisation; the L2 norm runs over the *sequence* axis (x is b n d)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` (b n) limits the norm to valid frames, so batch padding does not change the result."""
        global_norm = torch.norm(masked_fill_rows(x, mask), p=2, dim=1, keepdim=True)  # b 1 d
        relative = global_norm / (global_norm.mean(dim=-1, keepdim=True) + GRN_EPS)  # b 1 d
        return self.gamma * (x * relative) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """Depthwise conv(k7) -> LayerNorm -> Linear(d, 2d) -> GELU -> GRN -> Linear(2d, d), plus a residual."""

    def __init__(self, dim: int, intermediate_dim: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, CONVNEXT_KERNEL, padding=CONVNEXT_KERNEL // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=NORM_EPS)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.grn = GRN(intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # b n dt
        residual = x
        x = self.dwconv(x.transpose(1, 2)).transpose(1, 2)  # b n dt
        x = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(x))), mask))  # b n dt
        return residual + x


TEXT_LAYOUTS = ("filler", "average", "durations")


class TextEmbedding(nn.Module):
    """Token ids -> frame-aligned text features (b n dt), shared by the audio and visual branches.

    Three layouts say which frames a token's features land on (``layout``):

    - ``"filler"`` (F5-TTS / the paper): ids arrive with batch padding -1 and are shifted by +1, so row 0
      of the table is the filler token (pad and CFG-dropped text both become filler); the ids are truncated
      or filler-padded to the n frames; an absolute ``cat(cos, sin)`` table is added; then ``conv_layers``
      ConvNeXt-V2 blocks. The transformer has to discover the alignment itself.
    - ``"average"`` (ZipVoice-style): as filler, then the valid tokens are spread evenly over the valid
      frames after the encoder.
    - ``"durations"`` (Voicebox-style): the encoder runs over the tokens (token positions, token mask), and
      token k's output is repeated for ``durations[k]`` frames, so every frame knows which sound it is.
      Tokens with 0 frames (e.g. word boundaries) still give context to their neighbours in the encoder.
      A sample whose text is dropped for CFG gets zero features on every frame: its durations must not
      leak the alignment into the unconditional pass.

    ``mask_padding`` (F5 v1) zeroes filler positions before and after every block; the mask is taken from the
    ids *before* the CFG text drop, as F5 does. Independently of that, frames outside ``frame_mask`` (batch
    padding) are always zeroed around the blocks, so a padded batch computes what each item computes alone
    (the depthwise conv then sees zeros like its own zero padding, and GRN takes its sequence norm over the
    valid frames only).
    """

    def __init__(
        self,
        num_embeds: int,
        text_dim: int,
        conv_layers: int = 4,
        mask_padding: bool = True,
        layout: str = "filler",
    ):
        super().__init__()
        if layout not in TEXT_LAYOUTS:
            raise ValueError(f"text layout must be one of {TEXT_LAYOUTS}, got {layout!r}.")
        if layout != "filler" and not mask_padding:
            raise ValueError(f"the {layout!r} text layout needs text_mask_padding=True (it places valid tokens).")
        self.text_embed = nn.Embedding(num_embeds + 1, text_dim)  # row 0 = filler
        self.text_dim = text_dim
        self.mask_padding = mask_padding
        self.layout = layout
        self.text_blocks = nn.Sequential(
            *[ConvNeXtV2Block(text_dim, text_dim * CONVNEXT_MULT) for _ in range(conv_layers)]
        )

    @staticmethod
    def fit_ids(text_ids: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Shift ids by +1 (pad -1 -> filler 0) and truncate / filler-pad them to ``num_frames``."""
        ids = (text_ids + 1)[:, :num_frames]  # b min(nt, n)
        return F.pad(ids, (0, num_frames - ids.shape[1]), value=0)  # b n

    def _encode(self, ids: torch.Tensor, keep: torch.Tensor | None, norm_mask: torch.Tensor | None) -> torch.Tensor:
        """Embedding + absolute positions + ConvNeXt blocks over the id axis (b m) -> b m dt."""
        x = self.text_embed(ids)  # b m dt
        if len(self.text_blocks) > 0:
            positions = torch.arange(ids.shape[1], device=ids.device)
            x = x + sinusoidal_table(positions, self.text_dim).to(x.dtype)  # b m dt
            x = masked_fill_rows(x, keep)
            for block in self.text_blocks:
                x = masked_fill_rows(block(x, norm_mask), keep)
        return x

    def forward(
        self,
        text_ids: torch.Tensor,  # b nt, pad -1
        num_frames: int,
        drop_text: torch.Tensor | None = None,  # b bool: replace these samples' text by filler
        frame_mask: torch.Tensor | None = None,  # b n bool, True = valid frame
        durations: torch.Tensor | None = None,  # b nt long, frames per token ("durations" layout only)
    ) -> torch.Tensor:
        if self.layout == "durations":
            return self._forward_durations(text_ids, num_frames, drop_text, frame_mask, durations)
        ids = self.fit_ids(text_ids, num_frames)  # b n
        filler = ids == 0  # b n, before the CFG drop (F5)
        if drop_text is not None:
            ids = ids.masked_fill(drop_text.unsqueeze(1), 0)
        keep = frame_mask
        if self.mask_padding:
            keep = ~filler if keep is None else keep & ~filler
        x = self._encode(ids, keep, frame_mask)  # b n dt
        if self.layout == "average":
            x = self.average_upsample(x, ~filler, frame_mask)
        return x

    def _forward_durations(self, text_ids, num_frames, drop_text, frame_mask, durations) -> torch.Tensor:
        ids = text_ids + 1  # b nt, pad -> 0
        tokens = ids != 0  # b nt
        x = self._encode(ids, tokens, tokens)  # b nt dt
        x = self.expand_durations(x, durations.masked_fill(~tokens, 0), num_frames)  # b n dt
        x = masked_fill_rows(x, frame_mask)
        if drop_text is not None:
            x = x.masked_fill(drop_text[:, None, None], 0.0)
        return x

    @staticmethod
    def expand_durations(x: torch.Tensor, durations: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Repeat token k of x (b nt dt) for durations[:, k] frames; frames past a sample's total are 0."""
        ends = durations.cumsum(dim=1)  # b nt, exclusive end frame of each token
        frames = torch.arange(num_frames, device=x.device).expand(x.shape[0], num_frames).contiguous()  # b n
        index = torch.searchsorted(ends.contiguous(), frames, right=True)  # b n, token covering each frame
        inside = index < x.shape[1]  # b n
        gathered = torch.gather(x, 1, index.clamp(max=x.shape[1] - 1)[..., None].expand(-1, -1, x.shape[-1]))
        return masked_fill_rows(gathered, inside)  # b n dt

    @staticmethod
    def average_upsample(x: torch.Tensor, token_mask: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """Repeat each valid token ``len // tokens`` times (the last ``len % tokens`` once more) over the frames."""
        out = torch.zeros_like(x)  # b n dt
        if frame_mask is None:
            frame_mask = torch.ones_like(token_mask)
        valid = token_mask & frame_mask  # b n
        for i in range(x.shape[0]):
            num_frames, num_tokens = int(frame_mask[i].sum()), int(valid[i].sum())
            if num_tokens == 0:
                continue
            tokens = x[i, valid[i]]  # tokens dt
            repeats = torch.full((num_tokens,), num_frames // num_tokens, device=x.device)
            repeats[num_tokens - num_frames % num_tokens :] += 1
            out[i, :num_frames] = torch.repeat_interleave(tokens, repeats, dim=0)[:num_frames]
        return out


# ---------------------------------------------------------------------------------------------------------
# per-modality input


class ConvPositionEmbedding(nn.Module):
    """Two grouped 1-D convs (+ Mish) over time; padded frames are zeroed before and after each conv."""

    def __init__(self, dim: int, kernel_size: int = 31, groups: int = 16):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"conv_pos_kernel must be odd to keep the frame count, got {kernel_size}.")
        if dim % groups != 0:
            raise ValueError(f"conv_pos_groups={groups} must divide dim={dim}.")
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=kernel_size // 2),
            nn.Mish(),
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=kernel_size // 2),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # b n d
        # masking between the convs too (F5 masks only around the stack): padded frames must look like the
        # convs' own zero padding for a padded batch to equal its items run alone
        for layer in self.conv1d:
            if isinstance(layer, nn.Conv1d):
                x = masked_fill_rows(x, mask)
                x = layer(x.transpose(1, 2)).transpose(1, 2)  # b n d
            else:
                x = layer(x)
        return masked_fill_rows(x, mask)


class InputEmbedding(nn.Module):
    """One modality's input: Linear([x_t | cond | text]) -> d, plus its convolutional position embedding."""

    def __init__(self, in_dim: int, text_dim: int, dim: int, conv_pos_kernel: int = 31, conv_pos_groups: int = 16):
        super().__init__()
        self.proj = nn.Linear(in_dim * 2 + text_dim, dim)
        self.conv_pos_embed = ConvPositionEmbedding(dim, conv_pos_kernel, conv_pos_groups)

    def forward(
        self,
        x: torch.Tensor,  # b n c   noisy stream x_t
        cond: torch.Tensor,  # b n c   clean prompt (0 where generated)
        text: torch.Tensor,  # b n dt
        drop_cond: torch.Tensor | None = None,  # b bool
        mask: torch.Tensor | None = None,  # b n bool
    ) -> torch.Tensor:
        if drop_cond is not None:
            cond = cond.masked_fill(drop_cond[:, None, None], 0.0)
        x = self.proj(torch.cat((x, cond, text), dim=-1))  # b n d
        # x first: the sum takes x's row-major layout, not the convs' channel-first one, which would otherwise
        # propagate through every residual and make each LayerNorm / Linear copy its input
        return x + self.conv_pos_embed(x, mask)


# ---------------------------------------------------------------------------------------------------------
# rotary position embedding (interleaved pairs, GPT-J style)


class RotaryEmbedding(nn.Module):
    """RoPE frequencies; ``inv_freq`` is a persistent buffer because released F5 checkpoints contain it."""

    def __init__(self, head_dim: int, theta: float = ROPE_THETA):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin) of the angles of positions 0..n-1, one per (even, odd) channel pair: n dh/2 each.

        Computed once per model forward and shared by every attention layer.
        """
        positions = torch.arange(num_frames, device=self.inv_freq.device).type_as(self.inv_freq)
        angles = torch.outer(positions, self.inv_freq)  # n dh/2
        return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], num_heads: int | None = None,
                 head_axis: int = 1):
    """Rotate each channel pair (x0, x1) of x (b h n dh) by its angle; only the first ``num_heads`` heads
    when given (F5 v0: 1). Interleaved pairs ("rotate every two", as x_transformers / F5-TTS), i.e.
    ``x * cos + rotate_every_two(x) * sin`` with (x0, x1) -> (-x1, x0), written per pair.

    ``head_axis=2`` takes x laid out b n h dh (the projections' own layout, so no transposed copy is made).
    For float32/float64 the pairs are rotated as one complex multiply ``(x0 + i x1)(cos + i sin)``: the same
    products and sums as the real form (bit-identical on CPU) in one pass over x instead of six.
    """
    if num_heads is not None:
        rotated = apply_rotary(x.narrow(head_axis, 0, num_heads), rope, head_axis=head_axis)
        rest = x.narrow(head_axis, num_heads, x.shape[head_axis] - num_heads)
        return torch.cat((rotated, rest), dim=head_axis)
    cos, sin = rope  # n dh/2
    if head_axis == 2:  # b n h dh: broadcast the tables over the heads
        cos, sin = cos[:, None], sin[:, None]  # n 1 dh/2
    if x.dtype in (torch.float32, torch.float64) and x.stride(-1) == 1 and all(
            stride % 2 == 0 for stride in x.stride()[:-1]):
        rotation = torch.complex(cos.to(x.dtype), sin.to(x.dtype))  # n (1) dh/2
        return torch.view_as_real(torch.view_as_complex(x.unflatten(-1, (-1, 2))) * rotation).flatten(-2)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    even, odd = x.unflatten(-1, (-1, 2)).unbind(-1)  # b h n dh/2
    return torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)


# ---------------------------------------------------------------------------------------------------------
# modulation, feed-forward, attention


class AdaLayerNorm(nn.Module):
    """adaLN-Zero: Linear(SiLU(t)) -> shift/scale/gate for attention and FFN (zero-initialised by the model)."""

    def __init__(self, dim: int):
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 6)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)

    def forward(self, x: torch.Tensor, t: torch.Tensor):
        """Returns the modulated x for attention and (gate_msa, shift_mlp, scale_mlp, gate_mlp), each b d."""
        emb = self.linear(self.silu(t))  # b 6d
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = emb.chunk(6, dim=1)
        x = torch.addcmul(shift_msa[:, None], self.norm(x), 1 + scale_msa[:, None])  # b n d: norm * (1 + s) + m
        return x, (gate_msa, shift_mlp, scale_mlp, gate_mlp)


class AdaLayerNormFinal(nn.Module):
    """Final modulation; note the chunk order is (scale, shift), unlike the blocks (F5-TTS)."""

    def __init__(self, dim: int):
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 2)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        scale, shift = self.linear(self.silu(t)).chunk(2, dim=1)  # b d each
        return torch.addcmul(shift[:, None], self.norm(x), 1 + scale[:, None])  # b n d


class FeedForward(nn.Module):
    """Linear(d, mult*d) -> GELU(tanh) -> Dropout -> Linear(mult*d, d); nested like F5 (``ff.0.0``, ``ff.2``)."""

    def __init__(self, dim: int, mult: float = 2, dropout: float = 0.0):
        super().__init__()
        inner = int(dim * mult)
        self.ff = nn.Sequential(
            nn.Sequential(nn.Linear(dim, inner), nn.GELU(approximate="tanh")),
            nn.Dropout(dropout),
            nn.Linear(inner, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


def key_padding_bias(mask: torch.Tensor | None) -> torch.Tensor | None:
    """b n bool (True = valid key) -> b 1 1 n mask for scaled_dot_product_attention."""
    return None if mask is None else mask[:, None, None, :]


class Attention(nn.Module):
    """Query/key/value/output projections of one modality; ``attend`` runs masked SDPA on (b h n dh) tensors.

    The projections are separate from the attention call so that a fusion block can concatenate the
    queries/keys/values of two modalities (MM-attention) and still use each modality's own weights.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        dropout: float = 0.0,
        qk_norm: str | None = None,
        pe_attn_head: int | None = None,
    ):
        super().__init__()
        if qk_norm not in (None, "rms_norm"):
            raise ValueError(f"qk_norm must be None or 'rms_norm', got {qk_norm!r}.")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.pe_attn_head = pe_attn_head
        inner = num_heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.q_norm = nn.RMSNorm(head_dim, eps=NORM_EPS) if qk_norm else None
        self.k_norm = nn.RMSNorm(head_dim, eps=NORM_EPS) if qk_norm else None
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(dropout)])

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:  # b n (h dh) -> b h n dh (a view)
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def _heads(self, x: torch.Tensor, norm: nn.Module | None, rope: tuple | None) -> torch.Tensor:
        """Projected x (b n (h dh)) -> b h n dh, normed and rotated in the b n h dh layout (no copies but RoPE's)."""
        x = x.unflatten(-1, (self.num_heads, self.head_dim))  # b n h dh
        if norm is not None:
            x = norm(x)
        if rope is not None:
            x = apply_rotary(x, rope, self.pe_attn_head, head_axis=2)
        return x.transpose(1, 2)  # b h n dh

    def project_query(self, x: torch.Tensor, rope: tuple | None) -> torch.Tensor:
        return self._heads(self.to_q(x), self.q_norm, rope)  # b h n dh

    def project_key_value(self, x: torch.Tensor, rope: tuple | None):
        return self._heads(self.to_k(x), self.k_norm, rope), self.split_heads(self.to_v(x))  # b h n dh each

    def project_out(self, out: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = out.transpose(1, 2).flatten(2)  # b n (h dh)
        out = self.to_out[1](self.to_out[0](out))  # b n d
        return masked_fill_rows(out, mask)

    @staticmethod
    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding_bias(key_mask))  # b h n dh

    def forward(
        self,
        x: torch.Tensor,  # b n d (queries)
        context: torch.Tensor | None = None,  # b m d (keys/values); None = self-attention
        mask: torch.Tensor | None = None,  # b n bool, query frames
        context_mask: torch.Tensor | None = None,  # b m bool
        rope: tuple | None = None,  # (cos, sin), n dh/2 each; same positions for queries and keys
    ) -> torch.Tensor:
        if context is None:
            context, context_mask = x, mask
        q = self.project_query(x, rope)
        k, v = self.project_key_value(context, rope)
        return self.project_out(self.attend(q, k, v, context_mask), mask)


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block (attention + FFN) of one modality; parameter names match F5-TTS.

    ``modulate`` / ``finish`` are split out so that fusion blocks can run the attention jointly.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        ff_mult: float = 2,
        dropout: float = 0.1,
        qk_norm: str | None = None,
        pe_attn_head: int | None = None,
    ):
        super().__init__()
        self.attn_norm = AdaLayerNorm(dim)
        self.attn = Attention(dim, num_heads, head_dim, dropout, qk_norm, pe_attn_head)
        self.ff_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.ff = FeedForward(dim, ff_mult, dropout)

    def modulate(self, x: torch.Tensor, t: torch.Tensor):
        return self.attn_norm(x, t)

    @staticmethod
    def attention_residual(x: torch.Tensor, attn_out: torch.Tensor, gates) -> torch.Tensor:
        return torch.addcmul(x, gates[0][:, None], attn_out)  # b n d: x + gate_msa * attn_out

    def feed_forward_residual(self, x: torch.Tensor, gates) -> torch.Tensor:
        _, shift_mlp, scale_mlp, gate_mlp = gates
        normed = torch.addcmul(shift_mlp[:, None], self.ff_norm(x), 1 + scale_mlp[:, None])  # b n d
        return torch.addcmul(x, gate_mlp[:, None], self.ff(normed))  # x + gate_mlp * ff

    def finish(self, x: torch.Tensor, attn_out: torch.Tensor, gates) -> torch.Tensor:
        """Gated attention residual, then the modulated, gated FFN residual."""
        return self.feed_forward_residual(self.attention_residual(x, attn_out, gates), gates)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor | None = None, rope: torch.Tensor | None = None
    ) -> torch.Tensor:
        normed, gates = self.modulate(x, t)
        return self.finish(x, self.attn(normed, mask=mask, rope=rope), gates)
