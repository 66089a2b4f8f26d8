"""Keyframe a short dance on the demo song's annotated beats: ``assets/motion/demo_dance.npy``.

A stand-in clip for the render demo until generated motion exists: a knee bounce that bottoms out on
every beat, a hip sway over two beats, arms that alternate between pumping and waving every four
beats, a torso twist and a slow turn. Rotations are composed per joint in SMPL-X's rest frame
(y up, facing +z, +x = the body's left) and saved as a FineDance (T, 315) array at 30 fps.

    python data/code/make_demo_motion.py [--seconds 10] [--out assets/motion/demo_dance.npy]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from body.skeleton import FPS, JOINT_NAMES, N_BODY_JOINTS, N_HAND_JOINTS, N_MOTION_JOINTS
from motion.formats import Motion, save_finedance_npy

ROOT = Path(__file__).resolve().parents[2]

SONG_BEATS = ROOT / "assets" / "music" / "soldiers_joy_house.json"
SHIN = THIGH = 0.42  # metres, only used to lower the pelvis as the knees bend


def rot(axis: str, degrees) -> Rotation:
    return Rotation.from_euler(axis, np.deg2rad(np.asarray(degrees, float)).reshape(-1, 1))


def smoothstep(x):
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def beat_phase(t: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Continuous beat count at times t (linear between annotated beats)."""
    idx = np.arange(len(beats), dtype=float)
    period = np.median(np.diff(beats))
    return np.interp(t, beats, idx, left=(t[0] - beats[0]) / period, right=None)


def keyframe_dance(seconds: float, beats: np.ndarray) -> Motion:
    t = np.arange(int(round(seconds * FPS))) / FPS
    phi = beat_phase(t, beats)
    n = len(t)
    joint = {name: i for i, name in enumerate(JOINT_NAMES)}
    rots = [Rotation.identity(n) for _ in range(N_MOTION_JOINTS)]

    knee = 24 * (0.5 + 0.5 * np.cos(2 * np.pi * phi))  # deepest on each beat
    hip, ankle = 0.6 * knee, -0.4 * knee
    for side in ("left", "right"):
        rots[joint[f"{side}_hip"]] = rot("x", -hip)
        rots[joint[f"{side}_knee"]] = rot("x", knee)
        rots[joint[f"{side}_ankle"]] = rot("x", ankle)
    sway = np.sin(np.pi * phi)  # one side per beat
    turn = 25 * np.sin(2 * np.pi * t / 8.0)
    rots[joint["pelvis"]] = rot("y", turn) * rot("z", 4 * sway)
    rots[joint["spine2"]] = rot("y", 8 * np.sin(np.pi * phi / 2)) * rot("z", -3 * sway)
    rots[joint["spine3"]] = rot("y", 6 * np.sin(np.pi * phi / 2))
    rots[joint["neck"]] = rot("x", 8 * (0.5 + 0.5 * np.cos(2 * np.pi * phi)))

    # Arms: four beats of pumping (elbows bent, fists up and down), four beats of waving overhead.
    wave_mix = smoothstep((np.abs(((phi / 4) % 2) - 1) - 0.25) * 2)  # 0 → pump, 1 → wave
    pump = 0.5 + 0.5 * np.cos(2 * np.pi * phi)
    for side, s in (("left", 1), ("right", -1)):
        down_pump = -(55 - 35 * pump)       # arm lowered from the T-pose, lifted on the beat
        up_wave = 55 + 20 * np.sin(np.pi * phi + (0 if s > 0 else np.pi))
        shoulder = (1 - wave_mix) * down_pump + wave_mix * up_wave
        elbow = (1 - wave_mix) * (70 + 20 * pump) + wave_mix * 20
        rots[joint[f"{side}_shoulder"]] = rot("z", s * shoulder) * rot("y", -s * 15 * (1 - wave_mix))
        rots[joint[f"{side}_elbow"]] = rot("y", -s * elbow)
        rots[joint[f"{side}_wrist"]] = rot("x", 15 * sway * s)
        start = N_BODY_JOINTS + (0 if s > 0 else N_HAND_JOINTS)
        for k in range(N_HAND_JOINTS - 3):  # relaxed curl of the four fingers; thumb left flat
            rots[start + k] = rot("z", -s * np.full(n, 12.0))

    poses = np.stack([r.as_rotvec() for r in rots], axis=1).astype(np.float32)
    drop = THIGH * (1 - np.cos(np.deg2rad(hip))) + SHIN * (1 - np.cos(np.deg2rad(knee - hip)))
    trans = np.stack([0.06 * sway, -drop, np.zeros(n)], axis=1).astype(np.float32)
    return Motion(poses=poses, trans=trans)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--beats", type=Path, default=SONG_BEATS, help="beat annotation JSON (beat_times_s)")
    p.add_argument("--out", type=Path, default=ROOT / "assets" / "motion" / "demo_dance.npy")
    a = p.parse_args(argv)
    beats = np.asarray(json.loads(a.beats.read_text())["beat_times_s"])
    save_finedance_npy(keyframe_dance(a.seconds, beats), a.out)
    print(f"wrote {a.out} ({a.seconds:g} s at {FPS} fps)")


if __name__ == "__main__":
    main()
