"""SeqModel: official layout, the function it computes, the cached sampler path, checkpoints."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from body.skeleton import BODY_DIM, HAND_DIM, MOTION_DIM
from audio.music import BEAT_CHANNEL
from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.network import MUSIC_DIM, DanceDecoder, ModelConfig, SeqModel

_REPO = Path(__file__).resolve().parents[1]
OFFICIAL_KEYS = _REPO / "docs" / "official_state_dict_keys.json"  # the 498 names and shapes (SPEC §5)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def official_model() -> SeqModel:
    torch.manual_seed(0)
    return SeqModel(ModelConfig.official()).eval()


@pytest.fixture(scope="module")
def tiny_model() -> SeqModel:
    torch.manual_seed(0)
    return SeqModel(ModelConfig.tiny()).eval()


def inputs(batch: int, window: int = 120, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, window, MOTION_DIM, generator=g)
    music = torch.randn(batch, window, MUSIC_DIM, generator=g)
    t = torch.randint(0, 1000, (batch,), generator=g)
    return x, music, t


# ---------------------------------------------------------------------------------------------
# Official layout


def test_official_state_dict_names_and_shapes(official_model):
    expected = json.loads(OFFICIAL_KEYS.read_text())
    state = official_model.state_dict()
    assert len(expected) == 498
    assert list(state) == list(expected)          # same names, same order
    assert {k: list(v.shape) for k, v in state.items()} == expected
    # The rotary buffer sits in 11 modules per decoder, all the same tensor.
    freqs = [k for k in state if k.endswith("rotary.freqs")]
    assert len(freqs) == 22
    assert torch.equal(state["network.body_net.rotary.freqs"],
                       1.0 / 10000 ** (torch.arange(0, 512, 2).float() / 512))


def test_official_parameter_count(official_model):
    assert n_params(official_model) == 94_107_455
    assert n_params(official_model.body_net) == 46_997_131
    assert n_params(official_model.hand_net) == 47_110_324


@pytest.mark.slow
def test_official_checkpoint_round_trip(official_model, tmp_path):
    """A file in the released layout (no config, ``module.`` prefix, no rotary buffers) loads back
    at the official size with identical EMA weights."""
    state = official_model.state_dict()
    ema = {f"module.{k}": v for k, v in state.items() if not k.endswith("rotary.freqs")}
    raw = {k: torch.zeros_like(v) for k, v in list(state.items())[:3]}   # not what gets loaded
    path = tmp_path / "train-2000.pt"
    torch.save({"ema_state_dict": ema, "model_state_dict": raw, "optimizer_state_dict": None,
                "normalizer": None}, path)
    try:
        with pytest.raises(CheckpointError, match="model_state_dict"):
            load_checkpoint(path, use_ema=False)           # the raw dict here is incomplete
        loaded = load_checkpoint(path)
        assert loaded.official and loaded.state_key == "ema_state_dict"
        assert loaded.config == ModelConfig.official()
        for key, value in loaded.model.state_dict().items():
            assert torch.equal(value, state[key]), key
        del loaded
    finally:
        path.unlink()


# ---------------------------------------------------------------------------------------------
# The function


def _reference_rotate(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotary as SPEC §5.8 states it: angles p·f_i, each repeated twice (interleaved pairs)."""
    pos = torch.arange(x.shape[-2], dtype=freqs.dtype)
    angles = (pos[:, None] * freqs[None, :]).repeat_interleave(2, dim=-1)
    pairs = x.unflatten(-1, (-1, 2))
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * angles.cos() + rotated * angles.sin()


def _reference_decoder(dec: DanceDecoder, x, cond, t, keep):
    """The decoder of SPEC §5 written out with nn.MultiheadAttention calls (eval mode)."""
    rot = lambda z: _reference_rotate(z, dec.rotary.freqs)  # noqa: E731
    d = dec.cfg.latent_dim
    tokens = dec.cond_projection(cond)
    for layer in dec.cond_encoder:
        h = layer.norm1(tokens)
        tokens = tokens + layer.self_attn(rot(h), rot(h), h, need_weights=False)[0]
        tokens = tokens + layer.linear2(F.gelu(layer.linear1(layer.norm2(tokens))))
    tokens = torch.where(keep[:, None, None], tokens, dec.null_cond_embed)
    pooled = dec.non_attn_cond_projection(tokens.mean(1))
    pooled = torch.where(keep[:, None], pooled, dec.null_cond_hidden)
    half = d // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=x.dtype) / (half - 1))
    emb = torch.cat(((t[:, None] * freqs).sin(), (t[:, None] * freqs).cos()), -1)
    t_hidden = F.mish(dec.time_mlp[1](emb))
    film_vec = dec.to_time_cond[0](t_hidden) + pooled
    t_tokens = dec.to_time_tokens[0](t_hidden).reshape(-1, 2, d)
    memory = dec.norm_cond(torch.cat((tokens, t_tokens), 1))

    def film(f, h):
        scale, shift = f.block[1](F.mish(film_vec)).chunk(2, -1)
        return (scale[:, None] + 1) * h + shift[:, None]

    h = dec.input_projection(x)
    for layer in dec.seqTransDecoder.stack:
        a = layer.norm1(h)
        h = h + film(layer.film1, layer.self_attn(rot(a), rot(a), a, need_weights=False)[0])
        a = layer.norm2(h)
        h = h + film(layer.film2, layer.multihead_attn(rot(a), rot(memory), memory, need_weights=False)[0])
        h = h + film(layer.film3, layer.linear2(F.gelu(layer.linear1(layer.norm3(h)))))
    return dec.final_layer(h)


@torch.no_grad()
def test_forward_matches_spec_reference(tiny_model):
    x, music, t = inputs(3)
    keep_body = torch.tensor([True, False, True])
    keep_hand = torch.tensor([True, True, False])
    out = tiny_model(x, music, t, keep=(keep_body, keep_hand))
    body = _reference_decoder(tiny_model.body_net, x[..., :BODY_DIM], music, t, keep_body)
    hand = _reference_decoder(tiny_model.hand_net, x[..., BODY_DIM:], torch.cat((body, music), -1), t, keep_hand)
    assert out.shape == (3, 120, MOTION_DIM)
    torch.testing.assert_close(out, torch.cat((body, hand), -1), atol=2e-5, rtol=1e-5)


@torch.no_grad()
def test_float64_model_computes_in_float64(tiny_model):
    """Rotary, time embedding and softmax follow a float64 model (issue 15): it matches the SPEC
    reference written in float64 to float64 precision, where float32 parts would leave ~1e-6."""
    import copy

    model = copy.deepcopy(tiny_model).double()
    assert model.body_net.rotary.freqs.dtype == torch.float64
    x, music, t = inputs(3)
    x, music = x.double(), music.double()
    keep = torch.tensor([True, False, True])
    out = model(x, music, t, keep=keep)
    body = _reference_decoder(model.body_net, x[..., :BODY_DIM], model._music(music), t, keep)
    hand = _reference_decoder(model.hand_net, x[..., BODY_DIM:], torch.cat((body, model._music(music)), -1), t, keep)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, torch.cat((body, hand), -1), atol=1e-12, rtol=1e-12)
    # The cached sampler path too, against the plain one.
    cache = model.encode_condition(music)
    torch.testing.assert_close(model.denoise(x, t, cache, 2.0), model.guided_forward(x, music, t, 2.0),
                               atol=1e-12, rtol=1e-12)
    # Back to float32: the frequencies are float32 again, the function the float32 model's.
    model.float()
    assert model.body_net.rotary.freqs.dtype == torch.float32
    torch.testing.assert_close(model(x.float(), music.float(), t, keep=keep),
                               tiny_model(x.float(), music.float(), t, keep=keep), atol=0, rtol=0)


def test_small_forward_shapes_and_gradients():
    torch.manual_seed(0)
    model = SeqModel(ModelConfig.small()).train()
    x, music, t = inputs(2)
    out = model(x, music, t)
    assert out.shape == (2, 120, MOTION_DIM) and out.dtype == torch.float32
    out.square().mean().backward()
    assert model.body_net.input_projection.weight.grad.abs().sum() > 0
    assert model.hand_net.cond_projection.weight.grad.abs().sum() > 0


@torch.no_grad()
def test_dropped_condition_ignores_music(tiny_model):
    x, music, t = inputs(2)
    _, other_music, _ = inputs(2, seed=7)
    drop = torch.zeros(2, dtype=torch.bool)
    torch.testing.assert_close(tiny_model(x, music, t, keep=drop), tiny_model(x, other_music, t, keep=drop))
    assert not torch.allclose(tiny_model(x, music, t), tiny_model(x, other_music, t))


def test_condition_dropout_is_independent_per_decoder(tiny_model):
    g = torch.Generator().manual_seed(0)
    body, hand = tiny_model._keep_masks(4000, "cpu", 0.25, None, g)
    assert abs(body.float().mean().item() - 0.75) < 0.03
    assert abs(hand.float().mean().item() - 0.75) < 0.03
    assert (body != hand).float().mean().item() > 0.3      # ≈ 2·0.25·0.75 = 0.375
    assert tiny_model._keep_masks(4, "cpu", 0.0, None, g) == (None, None)


@torch.no_grad()
def test_cached_denoise_equals_plain_forward(tiny_model):
    x, music, _ = inputs(3)
    cache = tiny_model.encode_condition(music)
    for step, w in ((999, 0.0), (500, 2.0), (19, 1.0), (250, 0.7), (500, 2.0)):   # cache reused
        expected = tiny_model.guided_forward(x, music, torch.full((3,), step), w)
        got = tiny_model.denoise(x, step, cache, w)
        assert (got - expected).abs().max().item() < 1e-5, (step, w)
    t = torch.tensor([3, 400, 999])                                              # per-sample steps
    assert (tiny_model.denoise(x, t, cache, 2.0) - tiny_model.guided_forward(x, music, t, 2.0)).abs().max() < 1e-5


@torch.no_grad()
def test_cached_denoise_equals_plain_forward_small_preset():
    torch.manual_seed(0)
    model = SeqModel(ModelConfig.small()).eval()
    x, music, t = inputs(2)
    got = model.denoise(x, t, model.encode_condition(music), 2.0)
    assert (got - model.guided_forward(x, music, t, 2.0)).abs().max().item() < 1e-5


@torch.no_grad()
def test_our_additions_cached_equals_plain_and_upgrades_keep_the_function():
    """Music normalisation, the frame-aligned condition and the beat phase: both paths agree, and
    adding them to a reference-design model (with_music_norm, with_cond_frames, with_beat_phase)
    does not change its output."""
    import dataclasses

    from model.network import with_beat_phase, with_cond_frames, with_music_norm

    torch.manual_seed(0)
    plain_cfg = dataclasses.replace(ModelConfig.tiny(), music_norm=False, cond_frames=False, beat_phase=False)
    plain = SeqModel(plain_cfg).eval()
    x, music, t = inputs(2)
    music = music * torch.linspace(0.1, 80, MUSIC_DIM) - 40
    music[..., BEAT_CHANNEL] = 0.0
    music[0, 3::14, BEAT_CHANNEL] = 1.0      # 128 BPM
    music[1, 10::20, BEAT_CHANNEL] = 1.0     # 90 BPM
    cfg, state = with_music_norm(plain.state_dict(), plain_cfg, music.mean((0, 1)), music.std((0, 1)))
    cfg, state = with_cond_frames(state, cfg)
    cfg, state = with_beat_phase(state, cfg)
    ours = SeqModel(cfg).eval()
    ours.load_state_dict(state)
    torch.testing.assert_close(ours.guided_forward(x, music, t, 2.0), plain.guided_forward(x, music, t, 2.0),
                               atol=1e-4, rtol=1e-4)
    for net in (ours.body_net, ours.hand_net):                   # make the new paths do something
        for layer in (net.cond_frame_projection, net.phase_input, net.phase_cond):
            torch.nn.init.normal_(layer.weight, std=0.2)
    expected = ours.guided_forward(x, music, t, 2.0)
    assert (expected - plain.guided_forward(x, music, t, 2.0)).abs().max() > 1e-2
    got = ours.denoise(x, t, ours.encode_condition(music), 2.0)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
    shifted = music.clone()                                      # the phase path reacts to the beats
    shifted[..., BEAT_CHANNEL] = torch.roll(music[..., BEAT_CHANNEL], 5, dims=1)
    assert (ours.guided_forward(x, shifted, t, 2.0) - expected).abs().max() > 1e-3
    with pytest.raises(ValueError):
        with_cond_frames(state, cfg)
    with pytest.raises(ValueError):
        with_beat_phase(state, cfg)


def test_beat_phase_features():
    """Phase 0 on beats, ½ halfway between them, continued at the median period outside the first
    and last beat; tempo channel log2(period / 15); no phase where the window has < 2 beats."""
    import math

    from model.network import beat_phase_features

    beats = torch.zeros(3, 120)
    beats[0, 10::20] = 1.0                       # period 20 frames
    beats[1, [40, 52, 70]] = 1.0                 # uneven gaps 12, 18 → median 15
    beats[2, 50] = 1.0                           # a single beat: unknown
    ph = beat_phase_features(beats)
    assert ph.shape == (3, 120, 4)
    angle = torch.atan2(ph[..., 0], ph[..., 1]) / (2 * math.pi) % 1.0
    torch.testing.assert_close(angle[0, 10::20], torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(angle[0, 20::20], torch.full((5,), 0.5), atol=1e-5, rtol=0)
    assert abs(float(angle[0, 5]) - 0.75) < 1e-5                 # before the first beat: extrapolated
    assert abs(float(ph[0, 0, 2]) - math.log2(20 / 15)) < 1e-6 and float(ph[0, 0, 3]) == 1.0
    assert abs(float(angle[1, 58]) - 6 / 18) < 1e-5               # between the uneven beats
    assert abs(float(angle[1, 77]) - 7 / 15) < 1e-5               # after the last, at the median period
    assert float(ph[1, 0, 2]) == 0.0
    assert torch.count_nonzero(ph[2]) == 0


@torch.no_grad()
def test_bfloat16_denoise_runs(tiny_model):
    model = SeqModel(ModelConfig.tiny()).eval()
    model.load_state_dict(tiny_model.state_dict())
    x, music, t = inputs(2)
    expected = model.guided_forward(x, music, t, 2.0)
    model.to(torch.bfloat16)
    got = model.denoise(x, t, model.encode_condition(music), 2.0)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() < 0.2 * expected.abs().max()


def test_config_round_trip():
    cfg = ModelConfig.small()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**cfg.to_dict(), "colour": 3})
    with pytest.raises(ValueError):
        ModelConfig(latent_dim=100, n_heads=8)


# ---------------------------------------------------------------------------------------------
# Checkpoints with our config


def test_checkpoint_with_config_round_trip(tmp_path, tiny_model):
    ema = SeqModel(ModelConfig.tiny())
    opt = torch.optim.Adam(tiny_model.parameters())
    path = save_checkpoint(tmp_path / "ckpt" / "run.pt", tiny_model, ema=ema, optimizer=opt, epoch=7)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded = load_checkpoint(path)
    assert loaded.config == ModelConfig.tiny() and not loaded.official
    assert loaded.payload["epoch"] == 7 and loaded.payload["normalizer"] is None
    assert set(loaded.payload) >= {"ema_state_dict", "model_state_dict", "optimizer_state_dict", "normalizer"}
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, ema.state_dict()[key])
    raw = load_checkpoint(path, use_ema=False, dtype=torch.bfloat16).model
    assert raw.dtype == torch.bfloat16
    assert torch.equal(raw.body_net.final_layer.weight, tiny_model.body_net.final_layer.weight.bfloat16())


def test_checkpoint_keeps_its_diffusion_config_and_older_files_get_the_defaults(tmp_path, tiny_model):
    from model.config import DiffusionConfig

    custom = DiffusionConfig(n_steps=500, sample_steps=20, guidance=3.0)
    path = save_checkpoint(tmp_path / "custom.pt", tiny_model, diffusion=custom)
    loaded = load_checkpoint(path)
    assert loaded.diffusion == custom and loaded.config == ModelConfig.tiny()
    assert torch.load(path, weights_only=False)["config"]["diffusion"]["sample_steps"] == 20
    # written before the diffusion entry existed: the config is the network's alone
    torch.save({"ema_state_dict": tiny_model.state_dict(), "config": tiny_model.config.to_dict()}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").diffusion == DiffusionConfig()
    torch.save({"ema_state_dict": tiny_model.state_dict(),
                "config": {**tiny_model.config.to_dict(), "diffusion": {"colour": 3}}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad.pt: invalid 'config'.*colour"):
        load_checkpoint(tmp_path / "bad.pt")


def test_the_shipped_checkpoint_loads_with_the_default_diffusion():
    from model.config import DiffusionConfig

    loaded = load_checkpoint(_REPO / "assets" / "checkpoints" / "default.pt")
    assert loaded.diffusion == DiffusionConfig() and not loaded.official


def test_checkpoint_errors_name_the_file(tmp_path, tiny_model):
    text = tmp_path / "notes.pt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pt: not a PyTorch checkpoint"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="missing.pt: no such"):
        load_checkpoint(tmp_path / "missing.pt")

    no_weights = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, no_weights)
    with pytest.raises(CheckpointError, match="other.pt: has no 'ema_state_dict'"):
        load_checkpoint(no_weights)

    # Weights without a config are taken for the official size: names or shapes disagree.
    wrong = tmp_path / "wrong.pt"
    torch.save({"ema_state_dict": tiny_model.state_dict()}, wrong)
    with pytest.raises(CheckpointError, match=r"wrong.pt: .*official size.*312 missing") as err:
        load_checkpoint(wrong)
    assert "\n" not in str(err.value)
    narrow = SeqModel(ModelConfig(latent_dim=16, n_heads=2, ff_dim=32))   # official layer counts
    torch.save({"ema_state_dict": narrow.state_dict()}, wrong)
    with pytest.raises(CheckpointError, match=r"wrong.pt: .*official size.*null_cond_embed has shape "
                                              r"\(1, 120, 16\), the model expects \(1, 120, 512\)"):
        load_checkpoint(wrong)

    partial = tmp_path / "partial.pt"
    state = dict(tiny_model.state_dict())
    state.pop("network.hand_net.final_layer.bias")
    torch.save({"ema_state_dict": state, "config": tiny_model.config.to_dict()}, partial)
    with pytest.raises(CheckpointError, match="partial.pt: .*1 missing .*final_layer.bias"):
        load_checkpoint(partial)


def test_sizes_come_from_skeleton(tiny_model):
    assert tiny_model.body_net.nfeats == BODY_DIM and tiny_model.hand_net.nfeats == HAND_DIM
    assert tiny_model.hand_net.cond_dim == BODY_DIM + MUSIC_DIM


def test_rotary_frequencies_stay_float32_in_bfloat16():
    model = SeqModel(ModelConfig.tiny()).to(torch.bfloat16)
    freqs = model.body_net.seqTransDecoder.stack[0].rotary.freqs
    assert freqs.dtype == torch.float32
    torch.testing.assert_close(freqs, 1.0 / 10000 ** (torch.arange(0, 32, 2).float() / 32))
    x = torch.randn(1, 122, 32)
    rotated = model.body_net.rotary(x.bfloat16()).float()
    torch.testing.assert_close(rotated, _reference_rotate(x, freqs), atol=0.05, rtol=0.02)


def test_model_built_under_inference_mode_runs():
    """Models created inside torch.inference_mode hold inference tensors (no version counters)."""
    with torch.inference_mode():
        model = SeqModel(ModelConfig.tiny()).eval()
        music = torch.zeros(1, 120, 35)
        out = model.denoise(torch.zeros(1, 120, 319), 10, model.encode_condition(music), 2.0)
    assert out.shape == (1, 120, 319) and torch.isfinite(out).all()
