"""Editing (issue 13): kept spans and parts stay exact, the rest is danced anew, on the API and the command line.

The source motion is the repository's demo dance (real-looking, smooth); the model is the tiny random one,
so the generated parts are wild, which makes "kept exactly" and "no seam" strict tests.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

import generate_dance
import pipeline
from body.kinematics import joints_from_6d
from motion.edit import PART_JOINTS, EditError, EditPlan, ease_away_from, parse_parts, parse_spans, part_channels
from motion.layout import MOTION_319
from tests.media import probe

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "motion" / "demo_dance.npy"      # (300, 315): 10 s
MM = 1e-3


@pytest.fixture(scope="module")
def song(tmp_path_factory, click_track):
    return click_track(tmp_path_factory.mktemp("songs") / "clicks.wav", 5.0, chord=True)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The first 4 s of the demo dance as a FineDance .npy file (120 frames, no contacts)."""
    path = tmp_path_factory.mktemp("motion") / "mine.npy"
    np.save(path, np.load(DEMO)[:120])
    return path


@pytest.fixture(scope="module")
def gen(checkpoint):
    return pipeline.DanceGenerator(checkpoint, device="cpu")


def joints(gen, vector) -> np.ndarray:
    """(T, 319) → (T, 52, 3) joint positions in metres (forward kinematics on the generator's body)."""
    v = torch.from_numpy(np.asarray(vector, np.float32))
    return joints_from_6d(MOTION_319.rot6d(v), v[:, MOTION_319.translation], gen.rest_joints).numpy()


def steps(j: np.ndarray) -> np.ndarray:
    """(T, J, 3) → (T − 1,) the largest joint displacement from each frame to the next (metres)."""
    return np.linalg.norm(np.diff(j, axis=0), axis=-1).max(axis=1)


# --- the edit's masks, without a model ---------------------------------------------------------------

def test_spans_parse_to_frames_and_bad_spans_name_themselves():
    assert parse_spans("0-3,6-10", 10.0) == ((0, 90), (180, 300))
    assert parse_spans(None, 4.0) == parse_spans("all", 4.0) == ((0, 120),)
    assert parse_spans("2-3, 0-2.5", 4.0) == ((0, 90),)                       # sorted and merged
    for text, problem in (("0-3x", "'0-3x' is not a span"), ("3", "'3' is not a span"), ("4-2", "ends before"),
                          ("6-12", "'6-12' runs past the end of the motion \\(10.00 s\\)"), ("a-b", "'a-b'")):
        with pytest.raises(EditError, match=problem):
            parse_spans(text, 10.0)


def test_parts_select_their_channels():
    assert parse_parts("lower, hands") == ("lower", "hands") and parse_parts("") == ("all",)
    with pytest.raises(EditError, match="unknown part 'legs'"):
        parse_parts("lower,legs")
    rot0 = MOTION_319.rotations.start

    def joints_of(mask):
        return {j for j in range(52) if mask[rot0 + 6 * j:rot0 + 6 * j + 6].all()}

    lower = part_channels("lower")
    assert joints_of(lower) == {0, 1, 2, 4, 5, 7, 8, 10, 11} and lower[MOTION_319.translation].all()
    assert lower[MOTION_319.contacts].all() and not part_channels("lower", with_contacts=False)[:4].any()
    root = part_channels("root")
    assert joints_of(root) == {0} and root[MOTION_319.translation].all() and root.sum() == 9
    assert joints_of(part_channels("hands")) == set(range(22, 52)) and not part_channels("hands")[4:7].any()
    assert joints_of(part_channels("upper")) == {0, 3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}
    assert part_channels("all").all()
    assert set(PART_JOINTS["lower"]) | set(PART_JOINTS["upper"]) | set(PART_JOINTS["hands"]) == set(range(52))


def test_keep_weights_are_one_on_kept_frames_and_ease_out_beside_them():
    plan = EditPlan(np.zeros((60, 319), np.float32), ((10, 20),), ("lower",), has_contacts=False)
    w = plan.keep_weights(80, guard=8)
    legs = part_channels("lower", with_contacts=False)
    assert (w[10:20][:, legs] == 1).all() and (w[:, ~legs] == 0).all()
    assert (w[:2, legs] == 0).all() and (w[28:, legs] == 0).all()            # 8 frames of ease each side
    side = w[20:28, legs][:, 0]
    assert (np.diff(side) < 0).all() and 0 < side[-1] < side[0] < 1
    assert plan.kept(80)[:, legs].sum(0).tolist() == [10] * legs.sum()
    assert ease_away_from(np.zeros(5, bool), 3).tolist() == [1.0] * 5


def test_beat_sync_and_foot_lock_leave_kept_frames_and_legs_alone(gen):
    from sync.foot_lock import lock_feet
    from sync.time_warp import sync_to_beats

    v = np.concatenate([np.zeros((300, 4), np.float32), np.load(DEMO)], axis=1)
    plan = EditPlan(v, ((0, 90), (200, 300)), ("all",))
    kept = plan.kept(300)
    beats = np.arange(7, 300, 13.0)                       # a tempo the sway does not have: it must move
    free, fixed = sync_to_beats(v, beats, gen.rest_joints), sync_to_beats(v, beats, gen.rest_joints, keep=kept)
    assert free.changed and not np.array_equal(free.vector[90:200], v[90:200])
    np.testing.assert_array_equal(fixed.vector[kept], v[kept])
    assert not np.array_equal(fixed.vector[100:190], v[100:190])               # the free stretch is re-timed
    assert (np.diff(fixed.source_frames) > 0).all()

    legs = EditPlan(v, ((0, 300),), ("lower",), has_contacts=False).kept(300)
    raw, locked = lock_feet(v, gen.rest_joints), lock_feet(v, gen.rest_joints, keep=legs)
    assert raw.changed and not np.array_equal(raw.vector, v)                  # the demo's feet slide
    np.testing.assert_array_equal(locked.vector, v)                           # but these legs are kept
    half = EditPlan(v, ((0, 150),), ("lower",), has_contacts=False).kept(300)
    partly = lock_feet(v, gen.rest_joints, keep=half).vector
    np.testing.assert_array_equal(partly[:150], v[:150])
    assert not np.array_equal(partly[160:], v[160:])


# --- dances with the tiny model ----------------------------------------------------------------------

def seam_steps(j: np.ndarray, spans, n: int) -> np.ndarray:
    """The largest joint step across each edge of the kept spans (the frame pairs touching an edge)."""
    edges = [e for span in spans for e in span if 0 < e < n]
    s = steps(j)
    return np.array([s[e - 2:e + 1].max() for e in edges])


@pytest.mark.slow
def test_re_dance_a_span_keeps_the_rest_exactly_and_joins_without_a_jump(gen, song, source):
    edit = pipeline.EditRequest(source, keep="0-1,2.5-4")
    dance = gen.dance(song, pipeline.Settings(steps=4), edit=edit)   # default duration: 30 s, more than the motion
    assert dance.vector.shape == (150, 319)     # the whole 5 s song: the extra 1 s continues the dance
    plan = pipeline.load_edit(edit)
    assert plan.spans == ((0, 30), (75, 120)) and "retrieval" not in dance.timings and not dance.retrieved
    assert dance.beat_sync is not None and dance.foot_lock is not None       # both ran, around the kept frames
    src, out = joints(gen, plan.known(150)), joints(gen, dance.vector)
    frames = plan.frames(150)
    assert np.abs(out[frames] - src[frames]).max() <= MM
    np.testing.assert_array_equal(dance.vector[:, 4:][frames], plan.source[:, 4:][frames[:120]])
    gap = np.linalg.norm(out[40:65] - src[40:65], axis=-1).mean()
    assert gap > 0.05                            # the re-danced span is new
    assert np.linalg.norm(out[125:] - src[125:], axis=-1).mean() > 0.05   # so is the continuation
    # No seam: each edge's step is within the dance's own frame-to-frame motion (its median step over the
    # generated frames, which for this random model is far below the distance it has to cover).
    own = np.median(steps(out)[~frames[:-1]])
    seams = seam_steps(out, ((0, 30), (75, 120)), 150)
    print(f"seam steps {np.round(seams, 3)} m; the dance's median step {own:.3f} m")
    assert (seams <= own).all(), (seams, own)
    far = np.linalg.norm(out[31:74] - src[31:74], axis=-1).max(axis=1)      # how far from the source it goes
    assert far.max() > 3 * seams.max()                                        # what a hard cut would have jumped


@pytest.mark.slow
def test_kept_parts_are_exact_while_the_others_change(gen, song, source):
    settings = pipeline.Settings(steps=4, duration=4.0)
    body = list(range(22))
    for parts, kept_joints in (("lower", PART_JOINTS["lower"]), ("root", (0,)),
                               ("upper", PART_JOINTS["upper"]), ("upper,hands", tuple(set(range(52)) - {1, 2, 4, 5, 7, 8, 10, 11}))):
        edit = pipeline.EditRequest(source, parts=parts)
        dance = gen.dance(song, settings, edit=edit)
        assert dance.vector.shape == (120, 319)
        src, out = joints(gen, pipeline.load_edit(edit).source), joints(gen, dance.vector)
        err = np.linalg.norm(out - src, axis=-1)                                # (T, 52)
        assert err[:, list(kept_joints)].max() <= MM, parts
        free = [j for j in body if j not in kept_joints]
        assert err[:, free].mean() > 0.05, parts                              # the rest is new
        np.testing.assert_array_equal(dance.vector[dance.kept], pipeline.load_edit(edit).source[dance.kept])


@pytest.mark.slow
def test_continue_a_dance_and_keep_nothing_past_the_motion(gen, song, source):
    dance = gen.dance(song, pipeline.Settings(steps=4, duration=4.5),
                      edit=pipeline.EditRequest(np.load(source)[:60]))          # a 2 s (T, 315) vector
    assert dance.vector.shape == (135, 319) and dance.kept[:60, 4:].all() and not dance.kept[60:].any()
    src = np.load(source)[:60]
    np.testing.assert_array_equal(dance.vector[:60, 4:], src)
    out = joints(gen, dance.vector)
    assert (seam_steps(out, ((0, 60),), 135) <= np.median(steps(out)[60:])).all()


def test_edit_errors_are_generation_errors_naming_the_problem(gen, song, source, tmp_path):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(pipeline.GenerationError, match="broken.npz: "):
        pipeline.load_edit(pipeline.EditRequest(bad))
    with pytest.raises(pipeline.GenerationError, match="runs past the end"):
        pipeline.load_edit(pipeline.EditRequest(source, keep=[(0, 3), (3.5, 9)]))
    with pytest.raises(pipeline.GenerationError, match="unknown part 'arms'"):
        pipeline.load_edit(pipeline.EditRequest(source, parts=("arms",)))
    long = tmp_path / "long.npy"
    np.save(long, np.load(DEMO))                                               # 10 s, the song 5 s
    with pytest.raises(pipeline.GenerationError, match="long.npy: the motion lasts 10.00 s"):
        gen.dance(song, pipeline.Settings(steps=2), edit=pipeline.EditRequest(long))


# --- the command line --------------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_edit_end_to_end(checkpoint, song, source, tmp_path, capsys):
    out = tmp_path / "edited.mp4"
    rc = generate_dance.main([str(song), "--checkpoint", str(checkpoint), "--steps", "3", "--edit", str(source),
                              "--keep", "0-1.5", "--keep_parts", "lower,hands", "--output", str(out),
                              "--save_motion", "--mode", "skeleton"])
    assert rc == 0, capsys.readouterr().err
    assert probe(out)["frames"] == 120                     # as long as the motion (no --duration)
    saved = np.load(out.with_suffix(".npy"))
    kept = pipeline.load_edit(pipeline.EditRequest(source, "0-1.5", "lower,hands")).kept(120)
    np.testing.assert_allclose(saved[kept], pipeline.load_edit(pipeline.EditRequest(source)).source[kept], atol=1e-5)
    longer = tmp_path / "longer.mp4"
    assert generate_dance.main([str(song), "--checkpoint", str(checkpoint), "--steps", "2", "--edit", str(source),
                                "--duration", "4.5", "--output", str(longer), "--mode", "skeleton"]) == 0
    assert probe(longer)["frames"] == 135


@pytest.mark.parametrize("options, message", [
    (["--keep", "0-3,x"], "--keep: 'x' is not a span START-END in seconds"),
    (["--keep", "1-9"], "--keep: span '1-9' runs past the end of the motion (4.00 s)"),
    (["--keep_parts", "lower,feet"], "--keep_parts: unknown part 'feet'"),
    (["--edit", "MISSING"], "missing.npy: no such file"),
    (["--edit", "TEXT"], "notes.pkl: not a readable pickle"),
])
def test_cli_edit_errors_are_one_line_exit_1_and_write_nothing(checkpoint, song, source, tmp_path, capsys,
                                                                 options, message):
    (tmp_path / "notes.pkl").write_text("not a pickle")
    names = {"MISSING": str(tmp_path / "missing.npy"), "TEXT": str(tmp_path / "notes.pkl")}
    options = [names.get(o, o) for o in options]
    edit = [] if "--edit" in options else ["--edit", str(source)]
    out = tmp_path / "out" / "dance.mp4"
    rc = generate_dance.main([str(song), "--checkpoint", str(checkpoint), "--output", str(out), *edit, *options])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob("out/*"))


def test_keep_without_edit_is_an_error(checkpoint, song, capsys):
    assert generate_dance.main([str(song), "--checkpoint", str(checkpoint), "--keep", "0-1"]) == 1
    assert "--keep needs --edit MOTION" in capsys.readouterr().err
