"""The FineDance denoising network (SPEC §5): two FiLM transformer decoders, body then hands.

``SeqModel`` predicts the clean 319-d motion from a noisy one, the music features and the
diffusion step. Its ``network`` holds two decoders of the same design:

- ``body_net``: motion dims ``BODY_DIM`` (contacts, root translation, 22 body joints × 6-D),
  conditioned on the music (35 per frame);
- ``hand_net``: motion dims ``HAND_DIM`` (2 × 15 hand joints × 6-D), conditioned on the body net's
  clean-motion output concatenated with the music (139 + 35).

At the official size (``ModelConfig.official()``) the state dict has exactly the 498 names and shapes
of the released checkpoint ``train-2000.pt``.

Two ways to run it, computing the same function:

- ``forward`` / ``guided_forward``: plain, for training and as the reference;
- ``encode_condition`` once per song, then ``denoise`` once per diffusion step: everything that does
  not depend on the step (music encoder, pooled condition, the condition part of every
  cross-attention key/value projection, the null-condition memory) is computed once, and the
  guided and unguided halves run as one batch.

Attention is computed from the packed weights of ``nn.MultiheadAttention`` modules (kept for their
parameter layout) by one function shared by both paths, so the rotary quirk (rotation of the whole
attention input before the in-projection, for queries and keys only) is explicit.

Shapes: B samples (music windows), T = ``window`` frames (120), D = ``latent_dim``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from body.skeleton import BODY_DIM, HAND_DIM, MOTION_DIM
from audio.music import BEAT_CHANNEL
from audio.music import FEATURE_DIM as MUSIC_DIM    # 35 music features per frame (SPEC §2)

N_TIME_TOKENS = 2     # time tokens appended to the cross-attention memory
TIME_MLP_MULT = 4     # the time MLP's hidden size is this × latent_dim (2048 at 512)
ROTARY_THETA = 10000.0


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of one ``SeqModel``. ``window`` is the fixed number of frames per sample."""

    latent_dim: int = 512
    n_layers: int = 8
    n_heads: int = 8
    ff_dim: int = 1024
    cond_layers: int = 2
    dropout: float = 0.1
    window: int = 120
    music_dim: int = MUSIC_DIM
    music_norm: bool = False   # standardise music channels inside the model (ours; the reference does not)
    cond_frames: bool = False  # also add each frame's condition token to its motion token (ours)
    beat_phase: bool = False   # feed each frame's position within the beat, from the beat channel (ours)
    n_styles: int = 0          # style (genre) token: embeddings for this many styles, 0 = null (ours; 0 = none)

    def __post_init__(self):
        if self.n_styles < 0 or self.n_styles == 1:
            raise ValueError(f"n_styles must be 0 (no style input) or at least 2, got {self.n_styles}")
        if self.latent_dim % self.n_heads or self.latent_dim % 2:
            raise ValueError(f"latent_dim {self.latent_dim} must be even and divisible by "
                             f"n_heads {self.n_heads}")

    @classmethod
    def official(cls) -> "ModelConfig":
        """The released FineDance model (94,107,455 parameters)."""
        return cls()

    @classmethod
    def small(cls) -> "ModelConfig":
        """A CPU-friendly size for experiments (14,238,783 parameters)."""
        return cls(latent_dim=256, n_layers=4, n_heads=8, ff_dim=512, music_norm=True, cond_frames=True,
                   beat_phase=True)

    @classmethod
    def cpu(cls) -> "ModelConfig":
        """The size of our shipped default model: trainable and sampled on a laptop CPU (8.1 M parameters)."""
        return cls(latent_dim=192, n_layers=4, n_heads=6, ff_dim=384, music_norm=True, cond_frames=True,
                   beat_phase=True)

    @classmethod
    def cpu_reference(cls) -> "ModelConfig":
        """The ``cpu`` size in the reference design (none of our additions): stage 1 of the default model."""
        return dataclasses.replace(cls.cpu(), music_norm=False, cond_frames=False, beat_phase=False)

    @classmethod
    def tiny(cls) -> "ModelConfig":
        """For tests only."""
        return cls(latent_dim=32, n_layers=2, n_heads=4, ff_dim=64, cond_layers=1, music_norm=True,
                   cond_frames=True, beat_phase=True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of ``to_dict``; raises ``ValueError`` naming unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}")
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# Small building blocks


class Rotary(nn.Module):
    """Rotary position rotation of a whole feature vector (interleaved pairs).

    ``freqs`` (dim/2,) = 1 / theta^(2i/dim). Pair (2i, 2i+1) of the feature at position p is rotated
    by the angle p·freqs[i]. One instance is shared by every layer of a decoder and registered in each
    (so the buffer appears under each module's name, as in the official state dict).
    """

    def __init__(self, dim: int, theta: float = ROTARY_THETA):
        super().__init__()
        self.register_buffer("freqs", 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self._tables: dict = {}

    def _apply(self, fn, recurse=True):
        # ``model.to(torch.bfloat16)`` must not round the frequencies: angles reach ~120 rad, and
        # bf16 frequencies would move them by up to ~0.2 rad. Keep float32 (float64 in a float64
        # model: its values upcast, as loading a float32 state dict into it gives), follow the device.
        freqs = self.freqs
        super()._apply(fn, recurse)
        if freqs is not None and self.freqs is not None:
            wide = torch.float64 if self.freqs.dtype == torch.float64 else torch.float32
            self.freqs = freqs.to(self.freqs.device, wide)
        return self

    def _phases(self, length: int, device, dtype: torch.dtype = torch.float32) -> Tensor:
        """(length, dim/2) unit phases e^{i·p·freqs}, complex128 for dtype float64 else complex64,
        cached per length, device and dtype."""
        # Keyed on the buffer's identity and version, so loading a state dict invalidates it.
        # (Tensors made under inference_mode keep no version counter.)
        version = -1 if self.freqs.is_inference() else self.freqs._version
        key = (length, device, dtype, self.freqs.data_ptr(), version)
        table = self._tables.get(key)
        if table is None:
            pos = torch.arange(length, device=self.freqs.device, dtype=dtype)
            angles = pos[:, None] * self.freqs.to(dtype)[None, :]
            table = torch.polar(torch.ones_like(angles), angles).to(device)
            if len(self._tables) > 16:
                self._tables.clear()
            self._tables[key] = table
        return table

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (..., L, dim) at positions offset..offset+L-1 → rotated, same shape and dtype.

        Pair (x[2i], x[2i+1]) becomes (x[2i]·cos − x[2i+1]·sin, x[2i+1]·cos + x[2i]·sin): a complex
        multiplication, computed in float64 for float64 x, else in float32.
        """
        length = x.shape[-2]
        wide = _wide(x.dtype)
        phases = self._phases(offset + length, x.device, wide)[offset:]
        pairs = torch.view_as_complex(x.to(wide).unflatten(-1, (-1, 2)).contiguous())
        return torch.view_as_real(pairs * phases).flatten(-2).to(x.dtype)


def _wide(dtype: torch.dtype) -> torch.dtype:
    """The dtype the precision-sensitive parts (rotary, time embedding, softmax) run in: float64 in
    a float64 model, float32 otherwise (bf16 and float16 models too)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


class SinusoidalEmbedding(nn.Module):
    """Diffusion step t (B,) → (B, dim): sin then cos of t·exp(−ln(10000)·i/(dim/2 − 1)).

    Computed in float64 when ``dtype`` is float64, else in float32."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        half = self.dim // 2
        wide = _wide(dtype)
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=wide)
                          * (-math.log(10000.0) / (half - 1)))
        angles = t.to(wide)[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class FiLM(nn.Module):
    """Feature-wise modulation from the time/condition vector: (B, D) → scale, shift (B, 1, D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(nn.Mish(), nn.Linear(dim, 2 * dim))

    def forward(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        scale, shift = self.block(cond)[:, None, :].chunk(2, dim=-1)
        return scale, shift


def _modulate(h: Tensor, scale_shift: tuple[Tensor, Tensor]) -> Tensor:
    """(scale + 1)·h + shift."""
    scale, shift = scale_shift
    return torch.addcmul(shift, h, scale + 1)


def _split_heads(x: Tensor, n_heads: int) -> Tensor:
    """(B, L, D) → (B, H, L, D/H)."""
    return x.unflatten(-1, (n_heads, -1)).transpose(1, 2)


def _attend(attn: nn.MultiheadAttention, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Scaled dot-product attention over heads, then the output projection.

    q (B, H, Lq, d), k and v (B, H, S, d) → (B, Lq, D). Attention dropout as in
    ``nn.MultiheadAttention`` (only while training).
    """
    if attn.training and attn.dropout > 0:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.dropout)
    else:
        # Plain matmuls with a float32 softmax (float64 in a float64 model): on CPU about twice as
        # fast as the fused kernel at these sizes (120 × 122 positions, 64 per head), and as exact.
        scores = torch.matmul(q, k.transpose(-1, -2)).to(_wide(q.dtype)) * (q.shape[-1] ** -0.5)
        out = torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)
    return attn.out_proj(out.transpose(1, 2).flatten(-2))


def _project(attn: nn.MultiheadAttention, x: Tensor, first: int, count: int) -> Tensor:
    """Rows [first·D, (first+count)·D) of the packed in-projection: 0 = query, 1 = key, 2 = value."""
    d = attn.embed_dim
    w = attn.in_proj_weight[first * d:(first + count) * d]
    b = attn.in_proj_bias[first * d:(first + count) * d]
    return F.linear(x, w, b)


def _rotary_self_attention(attn: nn.MultiheadAttention, rotary: Rotary, h: Tensor) -> Tensor:
    """Self-attention on h (B, T, D): queries and keys from the rotated input, values from h."""
    q, k = _project(attn, rotary(h), 0, 2).chunk(2, dim=-1)
    v = _project(attn, h, 2, 1)
    heads = attn.num_heads
    return _attend(attn, _split_heads(q, heads), _split_heads(k, heads), _split_heads(v, heads))


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer with rotary self-attention (the music encoder)."""

    def __init__(self, cfg: ModelConfig, rotary: Rotary):
        super().__init__()
        d = cfg.latent_dim
        self.self_attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.linear1 = nn.Linear(d, cfg.ff_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.ff_dim, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.rotary = rotary

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, D) → (B, T, D)."""
        x = x + self.dropout1(_rotary_self_attention(self.self_attn, self.rotary, self.norm1(x)))
        h = self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x)))))
        return x + self.dropout2(h)


class DecoderLayer(nn.Module):
    """Pre-norm FiLM transformer decoder layer.

    x += film1(c)·SelfAttn(norm1 x); x += film2(c)·CrossAttn(norm2 x, memory);
    x += film3(c)·FF(norm3 x), where film(c)·h = (scale + 1)·h + shift.
    """

    def __init__(self, cfg: ModelConfig, rotary: Rotary):
        super().__init__()
        d = cfg.latent_dim
        self.self_attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(d, cfg.n_heads, dropout=cfg.dropout, batch_first=True)
        self.linear1 = nn.Linear(d, cfg.ff_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.ff_dim, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)
        self.film1 = FiLM(d)
        self.film2 = FiLM(d)
        self.film3 = FiLM(d)
        self.rotary = rotary

    def memory_kv(self, memory: Tensor, offset: int = 0) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of memory tokens (B, S, D) at positions offset.. →
        two (B, H, S, D/H). Keys come from the rotated memory, values from the memory itself."""
        heads = self.multihead_attn.num_heads
        k = _project(self.multihead_attn, self.rotary(memory, offset), 1, 1)
        v = _project(self.multihead_attn, memory, 2, 1)
        return _split_heads(k, heads), _split_heads(v, heads)

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor], film_cond: Tensor) -> Tensor:
        """x (B, T, D), kv from ``memory_kv`` (B, H, S, D/H), film_cond (B, D) → (B, T, D)."""
        attn = self.multihead_attn
        sa = _rotary_self_attention(self.self_attn, self.rotary, self.norm1(x))
        x = x + _modulate(self.dropout1(sa), self.film1(film_cond))
        q = _split_heads(_project(attn, self.rotary(self.norm2(x)), 0, 1), attn.num_heads)
        ca = _attend(attn, q, *kv)
        x = x + _modulate(self.dropout2(ca), self.film2(film_cond))
        ff = self.linear2(self.dropout(F.gelu(self.linear1(self.norm3(x)))))
        return x + _modulate(self.dropout3(ff), self.film3(film_cond))


class DecoderStack(nn.Module):
    """Holds the decoder layers as ``stack`` (official name ``seqTransDecoder.stack.N``)."""

    def __init__(self, cfg: ModelConfig, rotary: Rotary):
        super().__init__()
        self.stack = nn.ModuleList(DecoderLayer(cfg, rotary) for _ in range(cfg.n_layers))


# ---------------------------------------------------------------------------------------------
# One decoder


# ---------------------------------------------------------------------------------------------
# Beat phase (our sizes)

PHASE_DIM = 4            # sin, cos of the beat phase; log2 of the beat period; 1 where beats are known
PHASE_REF_PERIOD = 15.0  # frames per beat at 120 BPM: the log-period channel is 0 there


def beat_phase_features(beats: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """Per-frame beat phase of music windows from their beat channel (B, T) (1 on beat frames).

    Returns (B, T, PHASE_DIM) in ``dtype``: [sin 2πφ, cos 2πφ, log2(period / 15 frames), known], where φ
    in [0, 1) is the frame's position between the surrounding beats (0 on a beat). Before the
    first beat and after the last, φ continues at the window's median beat period. A window with
    fewer than two beats has no period: all four channels are 0 there (``known`` = 0).
    """
    n, t = beats.shape
    out = torch.zeros(n, t, PHASE_DIM, dtype=torch.float64)
    frames = torch.arange(t, dtype=torch.float64)
    for i, row in enumerate(beats.detach().float().cpu()):
        b = torch.nonzero(row > 0.5).flatten().double()
        if len(b) < 2:
            continue
        gaps = b[1:] - b[:-1]
        period = torch.quantile(gaps, 0.5)
        # φ from the beats around each frame; outside the first/last beat, extrapolated at the period
        j = torch.searchsorted(b, frames, right=True) - 1            # index of the last beat ≤ frame
        inside = (j >= 0) & (j < len(b) - 1)
        jc = j.clamp(0, len(b) - 2)
        phi = torch.where(inside, (frames - b[jc]) / gaps[jc],
                          torch.where(j < 0, (frames - b[0]) / period, (frames - b[-1]) / period))
        angle = 2 * math.pi * torch.remainder(phi, 1.0)
        out[i, :, 0] = torch.sin(angle)
        out[i, :, 1] = torch.cos(angle)
        out[i, :, 2] = float(torch.log2(period / PHASE_REF_PERIOD))
        out[i, :, 3] = 1.0
    return out.to(beats.device, dtype)


@dataclass
class MemoryCache:
    """Per-song cross-attention memory of one decoder, for N rows.

    k, v: per layer (N, H, Tc + 2, D/H); the first Tc positions (condition tokens) are filled once,
    the last two (time tokens) are overwritten by every ``DanceDecoder.run_cached`` call.
    cond_hidden: (N, D) pooled condition (``null_cond_hidden`` on unconditioned rows).
    Not safe to share between concurrent calls (it is written in place).
    """

    k: list[Tensor]
    v: list[Tensor]
    cond_hidden: Tensor
    n_cond_tokens: int
    frames: Tensor | None = None     # (N, T, D) added to the motion tokens (cond_frames / beat_phase / style)


class DanceDecoder(nn.Module):
    """One FiLM transformer decoder: noisy motion (B, T, nfeats) + condition (B, T, cond_dim) +
    step (B,) → clean motion (B, T, nfeats). T must equal ``cfg.window``.

    Frame-aligned condition (``cfg.cond_frames``, our sizes; not in the official network): the
    reference reaches the music only through cross-attention, so a frame must learn *where* its own
    music is before it can use it; our first CPU models never did (their dance barely changed when
    the song was shifted). ``cond_frame_projection`` (Linear(D, D), zero at initialisation) adds
    each frame's encoded condition token to that frame's motion token at the input, a direct path
    from "a beat here" to "a move here". Zero-initialised, it leaves a model's function unchanged
    when added to trained weights (``train_seq.py --init``).

    Beat phase (``cfg.beat_phase``, our sizes): the beat channel is a one-frame impulse, so from it
    alone a frame must find the nearest beats by attention before it knows where in the beat it
    is. ``beat_phase_features`` gives every frame that position directly (sin/cos of the phase,
    the tempo); ``phase_input`` adds it to the motion tokens and ``phase_cond`` to the condition
    tokens before the encoder. Both are bias-free and zero at initialisation; an unconditioned
    row (classifier-free dropout, the unguided half of guidance) gets no phase.

    Style token (``cfg.n_styles``, ours; issue 22): ``style_embed`` (one D-vector per style, index 0
    the null style, ``dataset.styles``) is added to the pooled condition that drives every FiLM layer
    and to every motion token, as FineDance's genre labels condition its network. It is zero at
    initialisation, so added to trained weights (``with_style``) it leaves their function unchanged.
    The style is not part of the music condition: the unguided half of guidance keeps it, so the
    guidance pushes towards the music while both halves dance the chosen style.
    """

    def __init__(self, nfeats: int, cond_dim: int, cfg: ModelConfig):
        super().__init__()
        d = cfg.latent_dim
        self.cfg = cfg
        self.nfeats, self.cond_dim = nfeats, cond_dim
        # Registration order follows the official state dict.
        self.null_cond_embed = nn.Parameter(torch.randn(1, cfg.window, d))
        self.null_cond_hidden = nn.Parameter(torch.randn(1, d))
        self.rotary = Rotary(d)
        time_hidden = TIME_MLP_MULT * d
        self.time_mlp = nn.Sequential(SinusoidalEmbedding(d), nn.Linear(d, time_hidden), nn.Mish())
        self.to_time_cond = nn.Sequential(nn.Linear(time_hidden, d))
        self.to_time_tokens = nn.Sequential(nn.Linear(time_hidden, N_TIME_TOKENS * d),
                                            nn.Unflatten(-1, (N_TIME_TOKENS, d)))
        self.norm_cond = nn.LayerNorm(d)
        self.input_projection = nn.Linear(nfeats, d)
        self.cond_encoder = nn.Sequential(*(EncoderLayer(cfg, self.rotary) for _ in range(cfg.cond_layers)))
        self.cond_projection = nn.Linear(cond_dim, d)
        self.non_attn_cond_projection = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.SiLU(),
                                                      nn.Linear(d, d))
        self.seqTransDecoder = DecoderStack(cfg, self.rotary)
        self.final_layer = nn.Linear(d, nfeats)
        if cfg.cond_frames:
            self.cond_frame_projection = nn.Linear(d, d)
            nn.init.zeros_(self.cond_frame_projection.weight)
            nn.init.zeros_(self.cond_frame_projection.bias)
        if cfg.beat_phase:
            self.phase_input = nn.Linear(PHASE_DIM, d, bias=False)
            self.phase_cond = nn.Linear(PHASE_DIM, d, bias=False)
            nn.init.zeros_(self.phase_input.weight)
            nn.init.zeros_(self.phase_cond.weight)
        if cfg.n_styles:
            self.style_embed = nn.Embedding(cfg.n_styles, d)
            nn.init.zeros_(self.style_embed.weight)

    @property
    def has_frames(self) -> bool:
        return self.cfg.cond_frames or self.cfg.beat_phase or self.cfg.n_styles > 0

    def style_vector(self, style: Tensor | None, n: int) -> Tensor | None:
        """Style indices (n,) long, or None (the null style) → (n, D) style embeddings; None for a
        model without the style input."""
        if not self.cfg.n_styles:
            return None
        if style is None:
            style = torch.zeros(n, dtype=torch.long, device=self.style_embed.weight.device)
        return self.style_embed(style.to(self.style_embed.weight.device))

    def frame_condition(self, tokens: Tensor, phase: Tensor | None = None,
                        style: Tensor | None = None) -> Tensor | None:
        """Condition tokens (B, T, D), beat phase (B, T, PHASE_DIM) or None and style embeddings
        (B, D) or None → what is added to the motion tokens (None when the model has no such path)."""
        if not self.has_frames:
            return None
        out = self.cond_frame_projection(tokens) if self.cfg.cond_frames else torch.zeros_like(tokens)
        if self.cfg.beat_phase and phase is not None:
            out = out + self.phase_input(phase.to(tokens.dtype))
        if style is not None:
            out = out + style.to(tokens.dtype)[:, None, :]
        return out

    @property
    def layers(self) -> nn.ModuleList:
        return self.seqTransDecoder.stack

    # -- pieces ------------------------------------------------------------------------------

    def condition(self, cond: Tensor, keep: Tensor | None = None,
                  phase: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Condition (B, T, cond_dim) → tokens (B, T, D) and pooled condition (B, D).

        keep (B,) bool: rows where it is False get ``null_cond_embed`` / ``null_cond_hidden``.
        phase: (B, T, PHASE_DIM) beat phase (``beat_phase`` models; ignored otherwise).
        """
        h = self.cond_projection(cond)
        if self.cfg.beat_phase and phase is not None:
            h = h + self.phase_cond(phase.to(h.dtype))
        tokens = self.cond_encoder(h)
        if keep is not None:
            tokens = torch.where(keep[:, None, None], tokens, self.null_cond_embed.to(tokens.dtype))
        hidden = self.non_attn_cond_projection(tokens.mean(dim=-2))
        if keep is not None:
            hidden = torch.where(keep[:, None], hidden, self.null_cond_hidden.to(hidden.dtype))
        return tokens, hidden

    def null_condition(self, n: int) -> tuple[Tensor, Tensor]:
        """The unconditioned tokens (n, T, D) and pooled condition (n, D)."""
        return (self.null_cond_embed.expand(n, -1, -1), self.null_cond_hidden.expand(n, -1))

    def time_features(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """Step t (B,) → FiLM time vector (B, D) and time tokens (B, 2, D)."""
        dtype = self.final_layer.weight.dtype
        embedding = self.time_mlp[0](t, dtype).to(dtype)
        hidden = self.time_mlp[1:](embedding)
        return self.to_time_cond(hidden), self.to_time_tokens(hidden)

    def _decode(self, x: Tensor, film_cond: Tensor, kvs, frames: Tensor | None = None) -> Tensor:
        h = self.input_projection(x)
        if frames is not None:
            h = h + frames
        for layer, kv in zip(self.layers, kvs):
            h = layer(h, kv, film_cond)
        return self.final_layer(h)

    # -- plain path ----------------------------------------------------------------------------

    def forward(self, x: Tensor, cond: Tensor, t: Tensor, keep: Tensor | None = None,
                phase: Tensor | None = None, style: Tensor | None = None) -> Tensor:
        """x (B, T, nfeats), cond (B, T, cond_dim), t (B,) steps, keep (B,) bool or None (= all kept),
        phase (B, T, PHASE_DIM) or None, style (B,) long or None (null) → predicted clean motion
        (B, T, nfeats)."""
        if phase is not None and keep is not None:
            phase = phase * keep[:, None, None].to(phase.dtype)
        tokens, hidden = self.condition(cond, keep, phase)
        s = self.style_vector(style, x.shape[0])
        if s is not None:
            hidden = hidden + s.to(hidden.dtype)
        t_vec, t_tokens = self.time_features(t)
        memory = self.norm_cond(torch.cat((tokens, t_tokens), dim=-2))
        kvs = [layer.memory_kv(memory) for layer in self.layers]
        return self._decode(x, t_vec + hidden, kvs, self.frame_condition(tokens, phase, s))

    # -- cached path ---------------------------------------------------------------------------

    def new_cache(self, tokens: Tensor, hidden: Tensor, phase: Tensor | None = None,
                  style: Tensor | None = None) -> MemoryCache:
        """A memory cache for rows with condition tokens (N, Tc, D), pooled condition (N, D),
        beat phase (N, Tc, PHASE_DIM) or None and style indices (N,) or None."""
        n, n_tok, d = tokens.shape
        heads = self.cfg.n_heads
        shape = (n, heads, n_tok + N_TIME_TOKENS, d // heads)
        cache = MemoryCache(k=[tokens.new_empty(shape) for _ in self.layers],
                            v=[tokens.new_empty(shape) for _ in self.layers],
                            cond_hidden=hidden.new_empty(n, d), n_cond_tokens=n_tok,
                            frames=tokens.new_empty(n, n_tok, d) if self.has_frames else None)
        self.write_cache(cache, slice(0, n), tokens, hidden, phase, style)
        return cache

    def write_cache(self, cache: MemoryCache, rows: slice, tokens: Tensor, hidden: Tensor,
                    phase: Tensor | None = None, style: Tensor | None = None) -> None:
        """Fill the condition part of ``cache`` for ``rows`` from tokens (n, Tc, D), hidden (n, D),
        beat phase (n, Tc, PHASE_DIM) or None and style indices (n,) or None (the null style)."""
        s = self.style_vector(style, tokens.shape[0])
        if s is not None:
            hidden = hidden + s.to(hidden.dtype)
        memory = self.norm_cond(tokens)
        n_tok = cache.n_cond_tokens
        for layer, k, v in zip(self.layers, cache.k, cache.v):
            k_c, v_c = layer.memory_kv(memory, offset=0)
            k[rows, :, :n_tok] = k_c
            v[rows, :, :n_tok] = v_c
        cache.cond_hidden[rows] = hidden
        if cache.frames is not None:
            cache.frames[rows] = self.frame_condition(tokens, phase, s)

    def run_cached(self, x: Tensor, t: Tensor, cache: MemoryCache, rows: slice | None = None) -> Tensor:
        """Like ``forward`` for the cached rows: x (n, T, nfeats), t (n,) → (n, T, nfeats).

        rows: which rows of the cache x corresponds to (default all).
        """
        rows = slice(None) if rows is None else rows
        t_vec, t_tokens = self.time_features(t)
        t_memory = self.norm_cond(t_tokens)
        n_tok = cache.n_cond_tokens
        kvs = []
        for layer, k, v in zip(self.layers, cache.k, cache.v):
            k_t, v_t = layer.memory_kv(t_memory, offset=n_tok)
            k[rows, :, n_tok:] = k_t
            v[rows, :, n_tok:] = v_t
            kvs.append((k[rows], v[rows]))
        frames = cache.frames[rows] if cache.frames is not None else None
        return self._decode(x, t_vec + cache.cond_hidden[rows], kvs, frames)


# ---------------------------------------------------------------------------------------------
# The two-decoder model


@dataclass
class SongCache:
    """What ``SeqModel.encode_condition`` computes once per batch of music windows.

    Rows [0, B) of each memory cache are the conditioned half, rows [B, 2B) the unconditioned half.
    The hand decoder's conditioned rows depend on the body output, so ``denoise`` refills them at
    every step. music: (B, T, music_dim).
    """

    music: Tensor
    body: MemoryCache
    hand: MemoryCache
    phase: Tensor | None = None    # (B, T, PHASE_DIM) beat phase (``beat_phase`` models)
    style: Tensor | None = None    # (B,) style indices (models with a style input; None: the null style)

    @property
    def batch(self) -> int:
        return self.music.shape[0]


KeepMask = Tensor | tuple[Tensor, Tensor] | None


class SeqModel(nn.Module):
    """Body decoder then hand decoder; x (B, T, 319) noisy motion → (B, T, 319) clean motion.

    Music normalisation (``config.music_norm``, our sizes; off at the official size, whose state
    dict it would change): the raw features mix channels with standard deviations from ~75 (MFCC 0)
    down to ~0.2 (beats, onset peaks). With an adaptive optimiser every weight moves at about the
    same rate, so the input weights of the beat channel change the model ~300× less per step than
    those of MFCC 0, and a briefly trained model ignores the beats. The buffers ``music_mean`` and
    ``music_std`` (training-set statistics, :meth:`set_music_stats`) standardise every channel first.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config = config or ModelConfig.official()
        self.network = nn.ModuleDict({
            "body_net": DanceDecoder(BODY_DIM, config.music_dim, config),
            "hand_net": DanceDecoder(HAND_DIM, BODY_DIM + config.music_dim, config),
        })
        if config.music_norm:
            self.register_buffer("music_mean", torch.zeros(config.music_dim))
            self.register_buffer("music_std", torch.ones(config.music_dim))

    def set_music_stats(self, mean, std, min_std: float = 1e-2) -> None:
        """Set the music normalisation from per-channel training-set statistics (35,)."""
        if not self.config.music_norm:
            raise ValueError("this model's config has music_norm off")
        self.music_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.music_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(min_std))

    def _apply(self, fn, recurse=True):
        # Keep the music statistics in float32 through ``model.to(torch.bfloat16)`` (MFCC 0's mean
        # is ~−143; bf16 would move it by up to 0.5), following the device.
        stats = {k: getattr(self, k) for k in ("music_mean", "music_std") if hasattr(self, k)}
        super()._apply(fn, recurse)
        for k, v in stats.items():
            setattr(self, k, v.to(getattr(self, k).device))
        return self

    def _phase(self, music: Tensor) -> Tensor | None:
        """Beat phase (B, T, PHASE_DIM) of raw music windows (B, T, music_dim), or None."""
        if not self.config.beat_phase:
            return None
        return beat_phase_features(music[..., BEAT_CHANNEL], _wide(self.dtype))

    def _music(self, music: Tensor) -> Tensor:
        if not self.config.music_norm:
            return music
        wide = _wide(self.dtype)
        out = (music.to(wide) - self.music_mean.to(wide)) / self.music_std.to(wide)
        return out.to(torch.promote_types(music.dtype, wide))

    @property
    def body_net(self) -> DanceDecoder:
        return self.network["body_net"]

    @property
    def hand_net(self) -> DanceDecoder:
        return self.network["hand_net"]

    @property
    def dtype(self) -> torch.dtype:
        return self.body_net.final_layer.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.body_net.final_layer.weight.device

    def _check_window(self, music: Tensor) -> None:
        if music.dim() != 3 or music.shape[1:] != (self.config.window, self.config.music_dim):
            raise ValueError(f"the model takes music windows (B, {self.config.window}, "
                             f"{self.config.music_dim}), got {tuple(music.shape)}")

    def _keep_masks(self, batch: int, device, cond_drop_prob: float, keep: KeepMask,
                    generator: torch.Generator | None) -> tuple[Tensor | None, Tensor | None]:
        if keep is not None:
            if isinstance(keep, tuple):
                return keep
            return keep, keep
        if cond_drop_prob <= 0:
            return None, None
        # Drawn independently for each decoder (SPEC §5.3).
        draws = torch.rand(2, batch, generator=generator, device=device)
        keep_body, keep_hand = draws >= cond_drop_prob
        return keep_body, keep_hand

    def forward(self, x: Tensor, music: Tensor, t: Tensor, cond_drop_prob: float = 0.0,
                keep: KeepMask = None, generator: torch.Generator | None = None,
                style: Tensor | int | None = None, style_drop_prob: float = 0.0) -> Tensor:
        """Plain forward.

        x (B, T, 319) noisy motion; music (B, T, music_dim); t (B,) diffusion steps.
        cond_drop_prob: probability, per sample and independently per decoder, of replacing the
        condition by the learned null condition (0.25 in training). keep: instead of drawing, a
        (B,) bool mask for both decoders, or a (body, hand) pair of masks; False = unconditioned.
        style: (B,) or one style index (``dataset.styles``; None = the null style 0), for models with a
        style input (others accept only the null style). style_drop_prob: probability, per sample, of
        replacing the style by the null style (training; drawn after the condition masks).
        Returns the predicted clean motion (B, T, 319).
        """
        self._check_window(music)
        phase = self._phase(music)
        music = self._music(music)
        t = _steps(t, x.shape[0], x.device)
        keep_body, keep_hand = self._keep_masks(x.shape[0], x.device, cond_drop_prob, keep, generator)
        style = self._styles(style, x.shape[0], x.device)
        if style is not None and style_drop_prob > 0:
            dropped = torch.rand(x.shape[0], generator=generator, device=x.device) < style_drop_prob
            style = torch.where(dropped, torch.zeros_like(style), style)
        body = self.body_net(x[..., :BODY_DIM], music, t, keep_body, phase, style)
        hand = self.hand_net(x[..., BODY_DIM:], torch.cat((body, music), dim=-1), t, keep_hand, phase, style)
        return torch.cat((body, hand), dim=-1)

    @property
    def has_style(self) -> bool:
        """Whether the network takes a style token (``ModelConfig.n_styles``)."""
        return self.config.n_styles > 0

    def _styles(self, style: Tensor | int | None, batch: int, device) -> Tensor | None:
        """Style indices for a batch: (B,) long, or None for a model without the style input (which
        accepts only the null style). Raises ValueError for an index the model has no embedding for."""
        if style is None:
            return None
        style = torch.as_tensor(style, dtype=torch.long, device=device)
        style = style.expand(batch) if style.dim() == 0 else style
        if not self.has_style:
            if bool((style != 0).any()):
                raise ValueError("this model has no style input; only the null style (0, 'any') applies")
            return None
        if bool(((style < 0) | (style >= self.config.n_styles)).any()):
            raise ValueError(f"style indices must be in [0, {self.config.n_styles}), got {style.tolist()}")
        return style

    def guided_forward(self, x: Tensor, music: Tensor, t: Tensor, guidance_weight: float,
                       style: Tensor | int | None = None) -> Tensor:
        """Reference classifier-free guidance: uncond + w·(cond − uncond), two plain passes (both
        with the style)."""
        n = x.shape[0]
        ones = torch.ones(n, dtype=torch.bool, device=x.device)
        cond = self(x, music, t, keep=ones, style=style)
        uncond = self(x, music, t, keep=~ones, style=style)
        return uncond + guidance_weight * (cond - uncond)

    @torch.no_grad()
    def encode_condition(self, music: Tensor, style: Tensor | int | None = None) -> SongCache:
        """Everything the step does not change, for music windows (B, T, music_dim) and a style
        (one index or (B,), ``dataset.styles``; None = the null style)."""
        self._check_window(music)
        phase = self._phase(music)
        music = self._music(music).to(self.dtype)
        n = music.shape[0]
        style = self._styles(style, n, music.device)
        both_style = None if style is None else torch.cat((style, style))
        body_tokens, body_hidden = self.body_net.condition(music, phase=phase)
        null_tokens, null_hidden = self.body_net.null_condition(n)
        both_phase = None if phase is None else torch.cat((phase, torch.zeros_like(phase)))
        body = self.body_net.new_cache(torch.cat((body_tokens, null_tokens)),
                                       torch.cat((body_hidden, null_hidden)), both_phase, both_style)
        hand_null_tokens, hand_null_hidden = self.hand_net.null_condition(n)
        # Conditioned hand rows are placeholders until the first ``denoise`` fills them.
        hand = self.hand_net.new_cache(hand_null_tokens.repeat(2, 1, 1), hand_null_hidden.repeat(2, 1),
                                       style=both_style)
        return SongCache(music=music, body=body, hand=hand, phase=phase, style=style)

    @torch.no_grad()
    def denoise(self, x: Tensor, t: Tensor | int, cache: SongCache, guidance_weight: float = 1.0) -> Tensor:
        """Guided prediction of the clean motion, using a ``SongCache``.

        x (B, T, 319) noisy motion for the cache's B music windows; t (B,) or an int step.
        Returns uncond + w·(cond − uncond) (B, T, 319) in x's dtype; the two halves run as one
        batch (only one of them when w is 0 or 1).
        """
        n = cache.batch
        w = float(guidance_weight)
        t = _steps(t, n, x.device)
        if w == 1.0:
            rows, x_in, t_in = slice(0, n), x, t
        elif w == 0.0:
            rows, x_in, t_in = slice(n, 2 * n), x, t
        else:
            rows, x_in, t_in = slice(0, 2 * n), torch.cat((x, x)), torch.cat((t, t))
        x_in = x_in.to(self.dtype)
        body = self.body_net.run_cached(x_in[..., :BODY_DIM], t_in, cache.body, rows)
        if rows.start == 0:
            hand_cond = torch.cat((body[:n], cache.music), dim=-1)
            tokens, hidden = self.hand_net.condition(hand_cond, phase=cache.phase)
            self.hand_net.write_cache(cache.hand, slice(0, n), tokens, hidden, cache.phase, cache.style)
        hand = self.hand_net.run_cached(x_in[..., BODY_DIM:], t_in, cache.hand, rows)
        out = torch.cat((body, hand), dim=-1).to(x.dtype)
        if w in (0.0, 1.0):
            return out
        cond, uncond = out[:n], out[n:]
        return uncond + w * (cond - uncond)


def with_music_norm(state: dict, config: ModelConfig, mean, std) -> tuple[ModelConfig, dict]:
    """A state dict of a model without music normalisation → the same function with it.

    The normalisation x' = (x − mean) / std is folded into the first layer that sees the music
    (the condition projections; the hand decoder's music columns follow the body's 139), W' = W·std
    and b' = b + W·mean, so the new model computes exactly what the old one did. Lets a run
    continue from a checkpoint trained on raw features (``train_seq.py --init``).
    """
    if config.music_norm:
        raise ValueError("the model already normalises its music input")
    new = dataclasses.replace(config, music_norm=True)
    mean = torch.as_tensor(mean, dtype=torch.float32)
    std = torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-2)
    out = dict(state)
    for net, first in (("body_net", 0), ("hand_net", BODY_DIM)):
        w_key, b_key = f"network.{net}.cond_projection.weight", f"network.{net}.cond_projection.bias"
        w, b = state[w_key].float(), state[b_key].float()
        cols = slice(first, first + config.music_dim)
        out[b_key] = (b + w[:, cols] @ mean).to(state[b_key].dtype)
        w = w.clone()
        w[:, cols] = w[:, cols] * std
        out[w_key] = w.to(state[w_key].dtype)
    out["music_mean"], out["music_std"] = mean, std
    return new, out


def with_cond_frames(state: dict, config: ModelConfig) -> tuple[ModelConfig, dict]:
    """A state dict of a model without the frame-aligned condition → the same function with it
    (``cond_frame_projection`` added at zero in both decoders)."""
    if config.cond_frames:
        raise ValueError("the model already has the frame-aligned condition")
    d = config.latent_dim
    out = dict(state)
    for net in ("body_net", "hand_net"):
        out[f"network.{net}.cond_frame_projection.weight"] = torch.zeros(d, d)
        out[f"network.{net}.cond_frame_projection.bias"] = torch.zeros(d)
    return dataclasses.replace(config, cond_frames=True), out


def with_beat_phase(state: dict, config: ModelConfig) -> tuple[ModelConfig, dict]:
    """A state dict of a model without the beat-phase input → the same function with it
    (``phase_input`` and ``phase_cond`` added at zero in both decoders)."""
    if config.beat_phase:
        raise ValueError("the model already has the beat-phase input")
    d = config.latent_dim
    out = dict(state)
    for net in ("body_net", "hand_net"):
        for name in ("phase_input", "phase_cond"):
            out[f"network.{net}.{name}.weight"] = torch.zeros(d, PHASE_DIM)
    return dataclasses.replace(config, beat_phase=True), out


def with_style(state: dict, config: ModelConfig, n_styles: int) -> tuple[ModelConfig, dict]:
    """A state dict of a model without the style token → the same function with one for
    ``n_styles`` styles (``style_embed`` added at zero in both decoders: every style, the null one
    included, starts as the model's one dance)."""
    if config.n_styles:
        raise ValueError("the model already has the style input")
    d = config.latent_dim
    out = dict(state)
    for net in ("body_net", "hand_net"):
        out[f"network.{net}.style_embed.weight"] = torch.zeros(n_styles, d)
    return dataclasses.replace(config, n_styles=n_styles), out


def _steps(t: Tensor | int, batch: int, device) -> Tensor:
    """An int or a (B,) tensor of diffusion steps → (B,) tensor."""
    t = torch.as_tensor(t, device=device)
    return t.expand(batch) if t.dim() == 0 else t


assert BODY_DIM + HAND_DIM == MOTION_DIM
