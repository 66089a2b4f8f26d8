"""Style control (issue 22): the names, retrieval by style, the network's style token, older
checkpoints, training with styles, and the style classifier that judges it all."""
import dataclasses
import json

import numpy as np
import pytest
import torch

import pipeline
from model.checkpoint import load_checkpoint, save_checkpoint
from model.network import ModelConfig, SeqModel, with_style
from dataset.styles import STYLES, StyleError, check_style, style_index, style_of_clip
from retrieval import bank as rb


def style_model(seed: int = 0) -> SeqModel:
    """A tiny model with the style token, its embeddings made different per style (index 0 too)."""
    torch.manual_seed(seed)
    model = SeqModel(dataclasses.replace(ModelConfig.tiny(), n_styles=len(STYLES))).eval()
    with torch.no_grad():
        for net in (model.body_net, model.hand_net):
            net.style_embed.weight.normal_()
    return model


@pytest.fixture(scope="module")
def style_checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("style") / "style.pt", style_model())


@pytest.fixture(scope="module")
def old_checkpoint(tmp_path_factory):
    """A tiny checkpoint as saved before the style token existed: no 'n_styles' in its config."""
    torch.manual_seed(1)
    path = save_checkpoint(tmp_path_factory.mktemp("old") / "old.pt", SeqModel(ModelConfig.tiny()))
    payload = torch.load(path, weights_only=True)        # in memory (not mapped: the file is rewritten)
    del payload["config"]["n_styles"]
    torch.save(payload, path)
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory, click_track):
    return click_track(tmp_path_factory.mktemp("song") / "clicks.wav", 4.0)


def test_style_names_and_the_one_line_error():
    assert STYLES[0] == "any" and style_index("any") == style_index(None) == 0
    assert [style_index(s) for s in ("modern", "indian", "salsa")] == [1, 2, 3]
    assert check_style(" Salsa ") == "salsa"
    with pytest.raises(StyleError) as err:
        check_style("jazz")
    assert str(err.value) == "unknown style 'jazz'; choose one of: any, modern, indian, salsa"
    with pytest.raises(pipeline.GenerationError, match="choose one of: any, modern, indian, salsa"):
        pipeline.checked_style("tango")
    assert style_of_clip("05_02_modern__d06") == "modern" and style_of_clip("61_10_salsa_mirror__d12") == "salsa"
    assert style_of_clip("94_01", {"style": "indian"}) == "indian"
    assert style_of_clip("001", {"style": "Popping"}) == style_of_clip("x") == "any"   # FineDance genres: null


def test_cli_refuses_an_unknown_style_in_one_line(song, tmp_path, capsys):
    import generate_all
    import generate_dance

    assert generate_dance.main([str(song), "--style", "jazz", "--out_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unknown style 'jazz'; choose one of: any, modern, indian, salsa"]
    assert generate_all.main(["--motion_save_dir", str(tmp_path / "m"), "--save_motions", "--style", "x"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: unknown style 'x'; choose one of: any, modern, indian, salsa"]
    assert not list(tmp_path.iterdir())


def test_retrieval_draws_only_clips_of_the_style():
    shipped = rb.Bank.load()
    rest = np.zeros(3)
    beats = np.arange(5, 900, 15.0)
    for style in ("modern", "indian", "salsa"):
        allowed = {shipped.names[i] for i in rb.style_clips(shipped, style)}
        assert allowed and all(shipped.styles[shipped.names.index(n)] == style for n in allowed)
        used = {line.split(" ")[0] for seed in range(3)
                for line in rb.retrieve(shipped, beats, 900, seed, rest, style=style).clips}
        assert len(used) >= 2 and used <= allowed, (style, used)
    # 'any' (and None) is today's retrieval: every clip allowed, the same draw as without a style
    assert rb.style_clips(shipped, "any") == list(range(len(shipped)))
    a, b = rb.retrieve(shipped, beats, 600, 4, rest, style="any"), rb.retrieve(shipped, beats, 600, 4, rest)
    assert a.clips == b.clips and np.array_equal(a.motion, b.motion)
    styles_of_any = {shipped.styles[shipped.names.index(line.split(" ")[0])]
                     for seed in range(8) for line in rb.retrieve(shipped, beats, 900, seed, rest).clips}
    assert len(styles_of_any) >= 2                      # without a style, styles mix
    with pytest.raises(StyleError):
        rb.retrieve(shipped, beats, 100, 0, rest, style="tango")
    tiny = rb.Bank(("a",), ("salsa",), (np.load("assets/motion/demo_dance.npy")[:200],), (np.arange(10, 200, 20.0),))
    with pytest.raises(rb.BankError, match="no indian clip"):
        rb.retrieve(tiny, beats, 100, 0, rest, style="indian")


def test_the_style_token_changes_the_dance_and_any_is_the_null_style():
    model = style_model()
    music = torch.randn(2, 120, 35)
    x, t = torch.randn(2, 120, 319), torch.tensor([50, 600])
    with torch.no_grad():
        out = {s: model(x, music, t, style=style_index(s)) for s in STYLES}
        assert torch.equal(out["any"], model(x, music, t))           # no style given = the null style
        for a in STYLES:
            for b in STYLES:
                if a != b:
                    assert (out[a] - out[b]).abs().max() > 1e-3, (a, b)
        # the cached sampler path computes the same guided function with the style as the plain one
        for s in (0, 2):
            cache = model.encode_condition(music, style=s)
            torch.testing.assert_close(model.denoise(x, t, cache, 2.0), model.guided_forward(x, music, t, 2.0, style=s),
                                       atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="style indices"):
        model(x, music, t, style=4)


def test_with_style_adds_the_token_at_zero_without_changing_the_function():
    torch.manual_seed(2)
    plain = SeqModel(ModelConfig.tiny()).eval()
    config, state = with_style(plain.state_dict(), plain.config, len(STYLES))
    styled = SeqModel(config).eval()
    styled.load_state_dict(state)
    music, x, t = torch.randn(2, 120, 35), torch.randn(2, 120, 319), torch.tensor([3, 900])
    with torch.no_grad():
        for s in range(len(STYLES)):
            torch.testing.assert_close(styled(x, music, t, style=s), plain(x, music, t))
    with pytest.raises(ValueError, match="already has the style input"):
        with_style(state, config, len(STYLES))


def test_the_pipeline_dances_the_style_with_a_style_model(style_checkpoint, song):
    gen = pipeline.DanceGenerator(style_checkpoint, device="cpu")
    assert gen.has_style
    base = dict(duration=2, steps=3, retrieval=False, beat_sync=False, foot_lock=False)
    dances = {s: gen.dance(song, pipeline.Settings(style=s, **base)).vector for s in STYLES}
    for s in STYLES[1:]:
        assert np.abs(dances[s] - dances["any"]).max() > 1e-3
    assert np.array_equal(gen.dance(song, pipeline.Settings(**base)).vector, dances["any"])
    assert pipeline.style_note(gen, pipeline.Settings(style="salsa")) is None
    # reference mode is the official design: no style
    ref = gen.dance(song, pipeline.Settings(duration=2, steps=3, reference=True, style="salsa"))
    assert ref.settings.style == "any"


def test_an_older_checkpoint_without_the_token_loads_and_styles_retrieval_only(old_checkpoint, song):
    loaded = load_checkpoint(old_checkpoint)
    assert loaded.config.n_styles == 0 and not loaded.model.has_style
    gen = pipeline.DanceGenerator(old_checkpoint, device="cpu")
    base = dict(duration=2, steps=3, retrieval=False, beat_sync=False, foot_lock=False)
    alone = {s: gen.dance(song, pipeline.Settings(style=s, **base)).vector for s in ("any", "indian")}
    assert np.array_equal(alone["any"], alone["indian"])        # the network has no style input
    note = pipeline.style_note(gen, pipeline.Settings(style="indian"))
    assert "has no style input" in note and "retrieved real clips only" in note
    assert "nothing" in pipeline.style_note(gen, pipeline.Settings(style="indian", retrieval=False))
    assert "nothing" in pipeline.style_note(gen, pipeline.Settings(style="indian"), edit=True)
    assert pipeline.style_note(gen, pipeline.Settings()) is None
    with_retrieval = gen.dance(song, pipeline.Settings(duration=3, steps=2, style="indian"))
    bank = rb.Bank.load()
    assert with_retrieval.retrieved and all(bank.styles[bank.names.index(line.split(" ")[0])] == "indian"
                                            for line in with_retrieval.retrieved)
    with pytest.raises(ValueError, match="no style input"):
        loaded.model.encode_condition(torch.zeros(1, 120, 35), style=1)


def test_training_adds_the_token_and_learns_it_from_clip_names(tmp_path):
    from model.training import TrainOptions, _loader, clip_styles, train
    from tests.test_training import smooth_song

    root = tmp_path / "data"
    (root / "motion").mkdir(parents=True)
    (root / "music_npy").mkdir()
    names = ["05_01_modern__d01", "94_01_indian__d01", "60_01_salsa__d02", "60_02_salsa__d03"]
    for i, name in enumerate(names):
        motion, music = smooth_song(160 if i < 2 else 400, i)
        np.save(root / "motion" / f"{name}.npy", motion)
        np.save(root / "music_npy" / f"{name}.npy", music)
    (root / "splits.json").write_text(json.dumps({"train": names, "test": []}))
    torch.manual_seed(0)
    src = save_checkpoint(tmp_path / "src.pt", SeqModel(ModelConfig.tiny()).eval())
    opts = TrainOptions(data_dir=str(root), out_dir=str(tmp_path / "run"), batch_size=4, stride=20, epochs=100,
                        progress=False, seed=3, init=str(src), init_add="style", max_steps=3, lr=1e-3,
                        balance_styles=True)
    lines = []
    path = train(opts, log=lines.append)
    trained = load_checkpoint(path)
    assert trained.config.n_styles == len(STYLES)
    emb = trained.model.body_net.style_embed.weight
    assert emb[1:].abs().sum() > 0                              # the styles seen in training moved
    assert any("style token" in line and "equally" in line for line in lines)
    # styles from the clip names; balanced drawing evens out the 2 long salsa songs against the rest
    from dataset.finedance import FineDanceDataset

    data = FineDanceDataset(root, window=120, stride=20, min_std=0)
    styles = clip_styles(data)
    assert [styles[n] for n in names] == [1, 2, 3, 3]
    drawn = [styles[data.windows[i][0]] for i in _loader(data, dataclasses.replace(opts, batch_size=1), 0,
                                                         styles).sampler]
    shares = np.bincount(drawn, minlength=4)[1:] / len(drawn)
    plain = np.bincount([styles[n] for n, _ in data.windows], minlength=4)[1:] / len(data.windows)
    assert plain[2] > 0.6 and shares.max() - shares.min() < plain.max() - plain.min()


def test_the_style_classifier_beats_chance_on_clips_it_never_saw():
    """Trained on the bank's clips of a few CMU takes per style, it names the style of other takes."""
    from body.body_model import BodyModel
    from eval.style_classifier import StyleClassifier, accuracy, bank_clips, chance

    rest = BodyModel().rest_joints.numpy()
    clips = bank_clips(rb.DEFAULT_BANK, rest, mirrors=False)
    held = {"05_19", "05_02", "94_14", "94_01", "60_14", "61_01"}
    train = [c for c in clips if c.clip_id not in held]
    test = [c for c in clips if c.clip_id in held]
    assert {c.style for c in test} == {"modern", "indian", "salsa"}
    scores = accuracy(StyleClassifier().fit(train), test)
    assert scores["windows"] > max(chance(test), 0.5) + 0.15
    assert scores["clips"] >= 5 / 6
