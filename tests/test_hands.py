"""The procedural hand layer (issue 22, part 2): authored poses within joint limits, changes on the beats,
fingers that move at a hand's speed, and the switches (off on request, in reference mode, and for a
network whose own fingers move); an edit's kept hands stay exact.

Real inputs: the repository's demo dance (real-looking arm motion, still hands) on the demo song, and a
tiny model whose hand decoder writes one still, flat hand (as our default model writes one still hand),
beside the tests' tiny random model, whose fingers move.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

import pipeline
from args import app_parser, generate_all_parser, generate_parser
from audio.music import song_analysis
from body.body_model import BodyModel
from body.hand_poses import (LIMITS, POSES, hand_frames, rotations_from_angles, angles_from_rotations, vocabulary,
                             within_limits)
from body.kinematics import joints_from_6d
from body.skeleton import LEFT_HAND_START, RIGHT_HAND_START
from model.checkpoint import save_checkpoint
from model.network import ModelConfig, SeqModel
from motion.layout import MOTION_319
from sync.beats import music_beats_from_features
from sync.hands import (HAND_ROTATIONS, HAND_SPEED_THRESHOLD, add_hand_motion, change_frames, finger_angles,
                        finger_motion, finger_speed, network_hands_move, pose_changes, read_arms)

ROOT = Path(__file__).resolve().parent.parent
DEMO_MOTION = ROOT / "assets" / "motion" / "demo_dance.npy"        # (300, 315): 10 s, still hands
DEMO_SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"


@pytest.fixture(scope="module")
def rest():
    return BodyModel().rest_joints.numpy()


@pytest.fixture(scope="module")
def demo():
    """The demo dance as a (300, 319) vector with the demo song's beat frames and steady mask."""
    v = np.load(DEMO_MOTION)
    v = np.concatenate([np.zeros((len(v), 4), np.float32), v], axis=1)
    features, track, _ = song_analysis(DEMO_SONG, max_seconds=12)
    return v, music_beats_from_features(features[:len(v)]), track.steady[:len(v)]


# --- the vocabulary and its frames -----------------------------------------------------------------

def test_every_authored_pose_is_within_the_joint_limits():
    assert len(POSES) >= 9
    for pose in POSES.values():
        assert pose.angles.shape == (15, 3)
        assert within_limits(pose.angles, tolerance=0).all(), pose.name
    assert (LIMITS[..., 0] < LIMITS[..., 1]).all()
    # hinges: the middle and last joints of the four long fingers barely swing sideways
    assert (np.rad2deg(np.abs(LIMITS[:12].reshape(4, 3, 3, 2)[:, 1:, 1])) <= 3 + 1e-9).all()


def test_styles_choose_their_own_shapes():
    general = {p.name for p in vocabulary("any")}
    assert {"relaxed", "open", "loose_fist", "point"} <= general
    assert not general & {"pataka", "alapadma"}
    indian = {p.name for p in vocabulary("indian")}
    assert indian >= general | {"pataka", "tripataka", "ardhachandra", "alapadma", "kartarimukha"}
    assert {p.name for p in vocabulary("salsa")} == {p.name for p in vocabulary("tango")} == general


def test_a_style_picks_its_own_shapes_more_often(demo, rest):
    vector, beats, steady = demo
    counts = {}
    for style in ("any", "indian"):
        layer = add_hand_motion(vector, rest, beats, steady, seed=0, style=style)
        names = [p for c in layer.changes for p in c.poses]
        counts[style] = sum(not {"any"} & set(POSES[n].styles) for n in names) / len(names)
        assert layer.style == style and within_limits(layer.angles, 1e-9).all()
    assert counts["any"] == 0 and counts["indian"] >= 0.4


def test_angles_and_rotations_invert_each_other(rest):
    frames = hand_frames(rest)
    rng = np.random.default_rng(0)
    angles = LIMITS[..., 0] + rng.random((50, 15, 3)) * (LIMITS[..., 1] - LIMITS[..., 0])
    for side in range(2):
        rot = rotations_from_angles(angles, frames[side])
        assert np.allclose(rot @ np.swapaxes(rot, -1, -2), np.eye(3), atol=1e-9)
        np.testing.assert_allclose(angles_from_rotations(rot, frames[side]), angles, atol=1e-9)


def _fingertips(rest, pose_angles) -> np.ndarray:
    """(2, 5, 3): the last joint of each finger of both hands in the rest pose with the hands in a pose."""
    frames = hand_frames(rest)
    rot = np.tile(np.eye(3), (52, 1, 1))
    for side in range(2):
        rot[22 + 15 * side:37 + 15 * side] = rotations_from_angles(pose_angles, frames[side])
    d6 = torch.from_numpy(rot[:, :2, :].reshape(52, 6))
    joints = joints_from_6d(d6, torch.zeros(3, dtype=d6.dtype), torch.from_numpy(rest).double()).numpy()
    return np.stack([joints[22 + 15 * side + 2:37 + 15 * side:3] for side in range(2)])


def test_flexion_curls_towards_the_palm_and_abduction_towards_the_thumb_on_both_hands(rest):
    """The axes are the body's: at rest the palms face down (−y) and the thumbs forward (+z)."""
    flat = _fingertips(rest, np.zeros((15, 3)))
    curled = np.zeros((15, 3))
    curled[:, 0] = np.deg2rad(30)
    down = _fingertips(rest, curled) - flat
    assert (down[..., 1] < -0.005).all()                   # every finger tip of both hands goes palm-wards
    spread = np.zeros((15, 3))
    spread[0, 1] = np.deg2rad(15)                            # the index finger's knuckle, towards the thumb
    moved = _fingertips(rest, spread) - flat
    assert (moved[:, 0, 2] > 0.005).all()                   # both index tips move forward, to the thumb's side
    assert np.abs(moved[:, 1:]).max() < 1e-9                 # nothing else moves
    assert np.sign(moved[0, 0, 0]) == -np.sign(moved[1, 0, 0])   # mirror images across the body


# --- when and how the poses change -----------------------------------------------------------------

def test_poses_change_on_the_beats_every_one_to_four_beats(demo, rest):
    vector, beats, steady = demo
    assert steady.all() and len(beats) >= 15
    layer = add_hand_motion(vector, rest, beats, steady, seed=0)
    assert layer.applied and len(layer.changes) >= 5
    on_beat = [c.frame for c in layer.changes if c.on_beat]
    assert set(on_beat) <= set(beats.tolist())
    index = np.searchsorted(beats, on_beat)
    assert np.diff(index).min() >= 1 and np.diff(index).max() <= 4
    assert index[0] <= 3
    # read from the motion alone: the hands hold a new pose on the beats the layer changed them on
    changed = pose_changes(layer.vector, beats)
    planned = np.isin(beats[1:], on_beat)
    assert changed[planned].all()
    assert 0.25 <= changed.mean() <= 1.0
    for c in layer.changes:                                # each hand takes another pose at every change
        assert all(p in POSES for p in c.poses)
    pairs = [c.poses for c in layer.changes]
    assert all(a[h] != b[h] for a, b in zip(pairs, pairs[1:]) for h in range(2))


def test_fingers_move_at_a_hands_speed_within_their_limits_on_a_real_dance(demo, rest):
    vector, beats, steady = demo
    assert finger_speed(vector) < 0.01                       # the demo dance's hands are still
    layer = add_hand_motion(vector, rest, beats, steady, seed=0)
    assert 0.3 <= finger_speed(layer.vector) <= 3.0
    angles = finger_angles(layer.vector, rest)
    assert within_limits(angles, tolerance=1e-4).all()
    np.testing.assert_allclose(angles, layer.angles, atol=1e-4)
    body = np.ones(vector.shape[1], bool)
    body[HAND_ROTATIONS] = False
    assert np.array_equal(layer.vector[:, body], vector[:, body])          # only the fingers change


def test_pose_choice_and_blend_follow_the_arm(demo, rest):
    vector, beats, steady = demo
    arms = read_arms(vector, rest)
    layer = add_hand_motion(vector, rest, beats, steady, seed=1)
    blends = np.array([c.blend for c in layer.changes[1:]])
    speed = np.array([arms.speed[c.frame:c.frame + 10].max() for c in layer.changes[1:]])
    assert np.corrcoef(speed, -blends)[0, 1] > 0              # faster arms, quicker blends
    # A still body: the slow rule picks calm poses, every 4 beats.
    still = np.repeat(vector[:1], len(vector), axis=0)
    calm = add_hand_motion(still, rest, beats, steady, seed=0)
    assert {p for c in calm.changes for p in c.poses} <= {"relaxed", "relaxed_soft"}
    assert np.diff(np.searchsorted(beats, [c.frame for c in calm.changes])).min() == 4


def test_fingers_lag_the_wrist(demo, rest):
    """The knuckles' acceleration bends the fingers, a few frames later."""
    vector, beats, steady = demo
    arms = read_arms(vector, rest)
    flex = finger_motion([], arms, len(vector))[:, :, 4, 0]   # no pose changes: the middle fingers' middle joints
    drive = arms.across
    lags = range(0, 8)
    corr = [np.corrcoef(drive[:len(drive) - k].ravel(), flex[k:].ravel())[0, 1] for k in lags]
    assert max(corr) > 0.5 and 1 <= int(np.argmax(corr)) <= 4


def test_without_a_steady_beat_the_hands_change_on_the_arms_motion_only(demo, rest):
    vector, beats, _ = demo
    n = len(vector)
    arms = read_arms(vector, rest)
    changes = change_frames(beats, np.zeros(n, bool), arms, n)
    assert len(changes) >= 5 and not any(on_beat for _, on_beat in changes)
    frames = np.array([f for f, _ in changes])
    assert np.diff(frames).min() >= 12
    speed = arms.speed.max(axis=1)
    for f in frames:                                     # each at a dip of the wrist speed
        assert speed[f] <= speed[max(0, f - 8):f + 9].mean() + 1e-9
    still = np.repeat(vector[:1], n, axis=0)
    assert change_frames(beats, np.zeros(n, bool), read_arms(still, rest), n) == []


# --- the switch that decides from the network's own fingers ---------------------------------------

def _moving_fingers(vector: np.ndarray, rest) -> np.ndarray:
    """The vector with every finger joint swinging 0.4 rad at 1.5 Hz (as captured fingers might)."""
    t = np.arange(len(vector)) / 30
    angles = np.zeros((len(vector), 15, 3))
    angles[..., 0] = 0.4 + 0.4 * np.sin(2 * np.pi * 1.5 * t)[:, None]
    out = vector.copy()
    frames = hand_frames(rest)
    for side in range(2):
        rot = rotations_from_angles(angles, frames[side])
        start = MOTION_319.rotations.start + (22 + 15 * side) * 6
        out[:, start:start + 90] = rot[..., :2, :].reshape(len(vector), 90)
    return out


def test_a_network_whose_fingers_move_keeps_its_hands(demo, rest):
    vector, beats, steady = demo
    moving = _moving_fingers(vector, rest)
    moves, speed = network_hands_move(moving)
    assert moves and speed > 1.0
    layer = add_hand_motion(moving, rest, beats, steady)
    assert not layer.applied and np.array_equal(layer.vector, moving)
    assert "its hands are kept" in layer.note and layer.changes == []
    still_moves, still_speed = network_hands_move(vector)
    assert not still_moves and still_speed < HAND_SPEED_THRESHOLD
    # our layer's own output reads as moving hands: applying it twice changes nothing more
    once = add_hand_motion(vector, rest, beats, steady)
    assert not add_hand_motion(once.vector, rest, beats, steady).applied


def test_the_decision_reads_only_the_hands_the_network_wrote(demo, rest):
    vector, beats, steady = demo
    moving = _moving_fingers(vector, rest)
    kept = np.zeros(vector.shape, bool)
    kept[:, HAND_ROTATIONS] = True
    kept[200:] = False                                   # an edit kept moving hands for 200 frames
    mixed = np.where(kept, moving, vector)
    assert not network_hands_move(mixed, kept)[0]        # the network's own 100 frames are still
    assert network_hands_move(mixed)[0]


# --- the pipeline: switches, reference mode, editing ------------------------------------------------

@pytest.fixture(scope="module")
def still_hands_checkpoint(tmp_path_factory):
    """The tests' tiny model with a hand decoder that writes one flat, still hand (zero weights, the
    identity rotation as its bias), like our default model's one still hand."""
    torch.manual_seed(0)
    model = SeqModel(ModelConfig.tiny())
    with torch.no_grad():
        final = model.hand_net.final_layer
        final.weight.zero_()
        final.bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(30))
    path = tmp_path_factory.mktemp("ckpt") / "still_hands.pt"
    save_checkpoint(path, model)
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory, click_track):
    return click_track(tmp_path_factory.mktemp("songs") / "clicks.wav", 5.0, bpm=120, chord=True)


@pytest.fixture(scope="module")
def still_gen(still_hands_checkpoint):
    return pipeline.DanceGenerator(still_hands_checkpoint, device="cpu")


def _hands(vector):
    return np.asarray(vector)[:, HAND_ROTATIONS]


def test_hand_motion_switch_on_the_pipeline(still_gen, song):
    settings = pipeline.Settings(duration=4, steps=3, seed=2)
    on = still_gen.dance(song, settings)
    off = still_gen.dance(song, pipeline.replace(settings, hand_motion=False))
    assert off.hands is None and finger_speed(off.vector) < 1e-3          # as the network wrote them: still
    assert on.hands.applied and on.hands.network_speed < 1e-3 and "hands" in on.timings
    assert 0.3 <= finger_speed(on.vector) <= 3.0
    body = np.ones(on.vector.shape[1], bool)
    body[HAND_ROTATIONS] = False
    np.testing.assert_array_equal(on.vector[:, body], off.vector[:, body])
    beats = music_beats_from_features(on.features)
    assert {c.frame for c in on.hands.changes if c.on_beat} <= set(beats.tolist())
    np.testing.assert_allclose(on.motion.poses[:, :22], off.motion.poses[:, :22])   # the video's motion carries it
    assert not np.allclose(on.motion.poses[:, 22:], off.motion.poses[:, 22:])


def test_a_checkpoint_whose_fingers_move_keeps_its_hands_on_the_pipeline(tiny_checkpoint, song):
    gen = pipeline.DanceGenerator(tiny_checkpoint, device="cpu")      # random weights: its fingers move
    settings = pipeline.Settings(duration=3, steps=3)
    on, off = gen.dance(song, settings), gen.dance(song, pipeline.replace(settings, hand_motion=False))
    assert not on.hands.applied and on.hands.network_speed > HAND_SPEED_THRESHOLD
    np.testing.assert_array_equal(on.vector, off.vector)


def test_reference_mode_has_no_hand_motion(still_gen, song):
    settings = pipeline.Settings(duration=3, steps=2, reference=True)
    assert settings.hand_motion and not settings.resolved(still_gen.diffusion.config).hand_motion
    dance = still_gen.dance(song, settings)
    assert dance.hands is None and "hands" not in dance.timings
    plain = still_gen.dance(song, pipeline.replace(settings, hand_motion=False))
    np.testing.assert_array_equal(dance.vector, plain.vector)


def test_keep_parts_hands_keeps_the_hands_exactly(still_gen, song):
    settings = pipeline.Settings(duration=4, steps=3, seed=1)
    source = still_gen.dance(song, settings).vector                    # procedural hands
    edited = still_gen.dance(song, pipeline.replace(settings, seed=5),
                             edit=pipeline.EditRequest(source, keep="0-2", parts="hands"))
    assert edited.hands.applied                                         # the rest gets new hands
    kept = edited.kept
    assert kept[:60, HAND_ROTATIONS].all() and not kept[60:, HAND_ROTATIONS].any()
    np.testing.assert_array_equal(edited.vector[kept], source[kept])    # bit for bit
    after = slice(60 + 16, None)                                        # past the ease beside the kept span
    assert not np.allclose(_hands(edited.vector)[after], _hands(source)[after], atol=1e-3)
    assert finger_speed(edited.vector[after]) > 0.3
    # keeping everything keeps everything
    whole = still_gen.dance(song, settings, edit=pipeline.EditRequest(source))
    np.testing.assert_array_equal(whole.vector, source)


def test_beat_synced_lays_the_hands_on_the_beats_again(still_gen, song):
    dance = still_gen.dance(song, pipeline.Settings(duration=4, steps=3, beat_sync=False))
    synced = still_gen.beat_synced(dance)
    assert synced.hands.applied and "hands" in synced.timings
    beats = set(music_beats_from_features(synced.features).tolist())
    assert {c.frame for c in synced.hands.changes if c.on_beat} <= beats


def test_the_switch_on_every_entry_point():
    for parser, argv in ((generate_parser(), ["song.mp3"]), (generate_all_parser(), ["--motion_save_dir", "x"]),
                         (app_parser(), [])):
        assert parser.parse_args(argv).hand_motion
        args = parser.parse_args(argv + ["--no_hand_motion"])
        assert not pipeline.settings_from_args(args, auto_duration=10).hand_motion


@pytest.mark.slow
def test_the_video_motion_files_and_exports_carry_the_hands(still_gen, song, tmp_path):
    from motion import bvh as bvh_reader
    from motion.formats import load_motion
    from tests.media import probe

    settings = pipeline.Settings(duration=2, steps=2, seed=3)
    files = {}
    for name, on in (("on", True), ("off", False)):
        files[name] = pipeline.make_dance_files(still_gen, song, tmp_path / f"{name}.mp4",
                                                pipeline.replace(settings, hand_motion=on), mode="skeleton",
                                                save_motion=True, exports=("bvh", "glb", "npz"))
    on = files["on"]
    assert on.dance.hands.applied and probe(on.video)["frames"] == 60
    fingers = slice(22, 52)
    saved = np.load(on.video.with_suffix(".npy"))
    np.testing.assert_allclose(saved[:, HAND_ROTATIONS], on.dance.vector[:, HAND_ROTATIONS], atol=1e-6)
    npz = load_motion(on.video.with_suffix(".npz"))                   # the AMASS-style export, read back
    np.testing.assert_allclose(npz.poses[:, fingers], on.dance.motion.poses[:, fingers], atol=1e-5)
    tips = {}
    for name, result in files.items():
        clip = bvh_reader.read_bvh(result.video.with_suffix(".bvh"))
        positions, _ = bvh_reader.forward_kinematics(clip)
        tips[name] = positions[:, [clip.index("left_index3"), clip.index("right_pinky3")]]
    assert np.abs(tips["on"] - tips["off"]).max() > 1.0               # centimetres: the fingers moved
    assert on.video.with_suffix(".glb").stat().st_size > 0


def test_the_page_has_the_switch_ticked_unless_in_reference_mode(still_gen):
    import webapp

    service = webapp.DanceService(lambda: still_gen)
    try:
        for defaults, ticked in ((pipeline.Settings(), True), (pipeline.Settings(hand_motion=False), False),
                                 (pipeline.Settings(reference=True), False)):
            demo = webapp.build_app(service, defaults=defaults)
            boxes = [c["props"] for c in demo.config["components"] if c["props"].get("elem_id") == "hand-motion"]
            assert len(boxes) == 1 and boxes[0]["value"] is ticked and "fingers" in boxes[0]["label"]
    finally:
        service.close()
