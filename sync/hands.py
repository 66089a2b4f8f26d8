"""Hands that move: a procedural hand layer (issue 22, part 2). Not learned: authored poses, placed by rules.

Our training capture has no finger data, so our networks write one still, relaxed hand (the default
model's 30 finger joints turn at 0.006–0.012 rad/s). This layer writes the fingers of a finished dance
(after beat sync and foot lock) from the pose vocabulary of ``body.hand_poses``:

- **When.** The pose changes on the song's beats: every 1, 2 or 4 beats, by how fast the arms move
  (fast: every beat, unless that is quicker than ``MIN_CHANGE_SECONDS``; slow: every 4), counted so that
  every 4th beat always brings a change (a phrase grid from the first steady beat). Where the song has no
  steady beat, the pose changes where the arms turn (the wrist's speed dips), at most every
  ``MIN_UNSTEADY_GAP`` frames.
- **What.** Each hand chooses by its own arm over the stretch until the next change: a slow arm gets a
  calm pose (relaxed), a fast outward swing an open one (open and spread), a fast pull inwards a closed
  one (loose fist), anything else an accent (any pose of the vocabulary; a style's own shapes are three
  times as likely as the general ones). A hand never keeps the pose it had, so every change is seen. The
  choice is seeded by the dance's seed.
- **How fast.** The blend into a pose takes 10 frames for a slow arm down to 3 for a fast one (never more
  than 70 % of the time since the last change), and ends on the beat.
- **Secondary motion.** The fingers lag the wrist: the knuckles' acceleration across the palm bends them
  (back when the palm leads, in when the back of the hand leads: up to ``MAX_INERTIA`` rad), and every
  finger angle follows its target through a critically damped response (a lag of about 2 frames at the
  knuckle, a little more at the finger tips). The response is a convex filter, so an angle never leaves
  the joint limits of ``body.hand_poses`` (the targets are clamped to them first).

It is off (``pipeline.Settings.hand_motion``) on request, in reference mode, and for any network whose own
fingers move (:func:`network_hands_move`, measured on the dance it wrote), so a model trained on real
finger capture keeps its hands. Kept hand channels of an edit (``--keep_parts hands``) stay exactly as
they were; beside them the layer eases in over ``motion.edit.GUARD`` frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from body.hand_poses import (FINGERS, HAND_STARTS, POSES, ROLES, HandPose, angles_from_rotations, clamp_to_limits,
                             hand_frames, rotations_from_angles, vocabulary)
from body.skeleton import FPS, N_BODY_JOINTS, N_HAND_JOINTS, PARENTS, ROT6D
from motion.edit import GUARD, ease_away_from
from motion.layout import MOTION_319

# -- what counts as moving fingers ---------------------------------------------------------------------
HAND_SPEED_THRESHOLD = 0.1    # rad/s: a network whose fingers turn faster than this on average keeps its hands
# Measured (benchmarks/bench_hands.py): our default model 0.006–0.012 rad/s on 18 songs; this layer 0.3–3.

# -- when poses change ------------------------------------------------------------------------------
SLOW_ARM = 0.45               # m/s: wrist speed (relative to the chest) under which a passage is slow
FAST_ARM = 1.1                # m/s: over which it is fast
OUTWARD = 0.45                # m/s: peak speed away from the shoulder (towards it) that makes a swing open (closed)
MIN_CHANGE_SECONDS = 0.3      # the shortest time between two changes on beats
MIN_UNSTEADY_GAP = 12         # frames between changes where the song has no steady beat
BLEND_FRAMES = (10.0, 3.0)    # frames of blend for a slow arm, a fast arm
STYLE_WEIGHT = 3.0            # how much likelier a style's own pose is than a general one

# -- secondary motion ------------------------------------------------------------------------------------
LAG_OMEGA = (36.0, 30.0, 26.0)   # rad/s: natural frequency of the critically damped lag, knuckle → tip
INERTIA_GAIN = 0.012             # rad of flexion per m/s² of knuckle acceleration towards the back of the hand
MAX_INERTIA = 0.25               # rad
INERTIA_WEIGHT = (0.6, 1.0, 1.0)  # share of the inertial bend at the knuckle, middle and last joint
THUMB_INERTIA = 0.3              # the thumb is shorter and stiffer

# -- measuring -------------------------------------------------------------------------------------------
CHANGE_ANGLE = 0.1            # rad: mean turn of the 30 finger joints between two beats that counts as a new pose
SETTLE = 2                    # frames after a beat where the pose is read (the lag)

HAND_ROTATIONS = slice(MOTION_319.rotations.start + N_BODY_JOINTS * ROT6D, MOTION_319.dim)   # the 30 finger joints
WRISTS, SHOULDERS, CHEST = (20, 21), (16, 17), 9
MIDDLE_KNUCKLE = 3 * FINGERS.index("middle")       # the middle finger's first joint, within a hand


# ---------------------------------------------------------------------------------------------------
# Rotations

def _matrices(d6: np.ndarray) -> np.ndarray:
    """(..., 6) → (..., 3, 3) float64 (rows by Gram–Schmidt, as body.rotations.rotation_6d_to_matrix)."""
    a1, a2 = d6[..., :3].astype(np.float64), d6[..., 3:].astype(np.float64)
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    b2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = b2 / np.linalg.norm(b2, axis=-1, keepdims=True)
    return np.stack([b1, b2, np.cross(b1, b2)], axis=-2)


def _to_6d(m: np.ndarray) -> np.ndarray:
    return m[..., :2, :].reshape(*m.shape[:-2], ROT6D)


def hand_rotations(vector: np.ndarray) -> np.ndarray:
    """(T, 319) → (T, 2, 15, 3, 3) local rotations of the left and right hands' finger joints."""
    v = np.asarray(vector)
    return _matrices(v[:, HAND_ROTATIONS].reshape(len(v), 2, N_HAND_JOINTS, ROT6D))


def _turn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (rad) between rotation matrices a and b (..., 3, 3)."""
    cos = (np.einsum("...ij,...ij->...", a, b) - 1) / 2
    return np.arccos(np.clip(cos, -1.0, 1.0))


def finger_speed(vector: np.ndarray, frames: np.ndarray | None = None) -> float:
    """Mean angular speed (rad/s) of the 30 finger joints' local rotations over a (T, 319) dance, or over
    the steps between consecutive frames both in ``frames`` ((T,) bool). 0 for fewer than 2 frames."""
    rot = hand_rotations(vector)
    if len(rot) < 2:
        return 0.0
    speed = _turn(rot[1:], rot[:-1]).mean(axis=(1, 2)) * FPS        # (T − 1,)
    if frames is not None:
        frames = np.asarray(frames, bool)
        speed = speed[frames[1:] & frames[:-1]]
    return float(speed.mean()) if len(speed) else 0.0


def network_hands_move(vector: np.ndarray, kept: np.ndarray | None = None,
                       threshold: float = HAND_SPEED_THRESHOLD) -> tuple[bool, float]:
    """Whether a network's own dance ((T, 319), as sampled) moves its fingers: (moves, mean finger speed
    in rad/s), measured on the frames whose hands it wrote alone (not ``kept`` by an edit, nor eased towards
    kept ones: ``motion.edit.GUARD`` frames beside them)."""
    frames = None
    if kept is not None:     # the frames where the hands are all the network's (not eased towards kept ones)
        frames = ease_away_from(np.asarray(kept)[:, HAND_ROTATIONS].any(axis=1), GUARD + 1) >= 1
    speed = finger_speed(vector, frames)
    return speed > threshold, speed


def finger_angles(vector: np.ndarray, rest_joints) -> np.ndarray:
    """(T, 319) → (T, 2, 15, 3) flexion, abduction and twist (rad) of every finger joint, in the frames of
    ``body.hand_poses`` (compare with its LIMITS)."""
    frames = hand_frames(np.asarray(rest_joints))
    rot = hand_rotations(vector)
    return np.stack([angles_from_rotations(rot[:, h], frames[h]) for h in range(2)], axis=1)


def pose_changes(vector: np.ndarray, beats, settle: int = SETTLE, threshold: float = CHANGE_ANGLE) -> np.ndarray:
    """(M − 1,) bool for M beat frames: whether the hands took a new pose between each beat and the next
    (the mean turn of the 30 finger joints between the poses read ``settle`` frames after each exceeds
    ``threshold``). Read from the motion alone."""
    rot = hand_rotations(vector)
    at = np.minimum(np.asarray(beats, int) + settle, len(rot) - 1)
    if len(at) < 2:
        return np.zeros(0, bool)
    return _turn(rot[at[1:]], rot[at[:-1]]).mean(axis=(1, 2)) > threshold


# ---------------------------------------------------------------------------------------------------
# The arms

@dataclass(frozen=True)
class Arms:
    """What the layer reads of the arms, per frame and hand. speed (T, 2): wrist speed relative to the
    chest (m/s); outward (T, 2): its speed away from the shoulder (m/s, negative: towards it);
    across (T, 2): the knuckles' acceleration towards the back of the hand (m/s²)."""

    speed: np.ndarray
    outward: np.ndarray
    across: np.ndarray


def _world(vector: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T, 22, 3, 3) and positions (T, 22, 3) of the body joints."""
    v = np.asarray(vector)
    local = _matrices(v[:, MOTION_319.rotations].reshape(len(v), -1, ROT6D)[:, :N_BODY_JOINTS])
    rot = np.zeros_like(local)
    pos = np.zeros(local.shape[:2] + (3,))
    for j in range(N_BODY_JOINTS):
        p = PARENTS[j]
        if p < 0:
            rot[:, j] = local[:, j]
            pos[:, j] = rest[j] + v[:, MOTION_319.translation]
        else:
            rot[:, j] = rot[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + rot[:, p] @ (rest[j] - rest[p])
    return rot, pos


def read_arms(vector: np.ndarray, rest_joints) -> Arms:
    """The arm motion of a (T, 319) dance on a body with (55, 3) rest joints."""
    rest = np.asarray(rest_joints, np.float64)
    frames = hand_frames(rest)
    rot, pos = _world(vector, rest)
    n = len(pos)
    speed, outward, across = (np.zeros((n, 2)) for _ in range(3))
    if n < 3:
        return Arms(speed, outward, across)
    for h, (wrist, shoulder) in enumerate(zip(WRISTS, SHOULDERS)):
        rel = gaussian_filter1d(pos[:, wrist] - pos[:, CHEST], 2.0, axis=0, mode="nearest")
        vel = np.gradient(rel, axis=0) * FPS
        speed[:, h] = gaussian_filter1d(np.linalg.norm(vel, axis=-1), 2.0, mode="nearest")
        arm = pos[:, wrist] - pos[:, shoulder]
        arm = arm / np.maximum(np.linalg.norm(arm, axis=-1, keepdims=True), 1e-6)
        outward[:, h] = gaussian_filter1d((vel * arm).sum(-1), 2.0, mode="nearest")
        knuckle_rest = rest[HAND_STARTS[h] + MIDDLE_KNUCKLE] - rest[wrist]       # the middle finger's knuckle
        knuckle = pos[:, wrist] + rot[:, wrist] @ knuckle_rest
        knuckle = gaussian_filter1d(knuckle, 1.5, axis=0, mode="nearest")
        acc = np.gradient(np.gradient(knuckle, axis=0), axis=0) * FPS ** 2
        abd_axis = frames[h, MIDDLE_KNUCKLE, :, 0]                    # ± the palm's normal
        dorsal = rot[:, wrist] @ (abd_axis * np.sign(abd_axis[1]))    # out of the back of the hand (up at rest)
        across[:, h] = (acc * dorsal).sum(-1)
    return Arms(speed, outward, across)


# ---------------------------------------------------------------------------------------------------
# When and what

@dataclass(frozen=True)
class HandChange:
    """A pose change: the frame it lands on, the poses of the left and right hand, the blend (frames),
    and whether it falls on a beat (else on the arms' motion)."""

    frame: int
    poses: tuple[str, str]
    blend: float
    on_beat: bool


def change_frames(beats, steady: np.ndarray | None, arms: Arms, n_frames: int) -> list[tuple[int, bool]]:
    """Frames where the hands change pose, each with whether it is a beat: every 1, 2 or 4 steady beats
    (by the arms' speed; every 4th always), and where the arms turn in spans without a steady beat."""
    beats = np.unique(np.asarray(beats, int))
    beats = beats[(beats >= 0) & (beats < n_frames)]
    if steady is None:
        steady = np.zeros(n_frames, bool)
        if len(beats) >= 2:
            steady[beats[0]:beats[-1] + 1] = True
    steady = np.asarray(steady, bool)[:n_frames]
    steady = np.pad(steady, (0, n_frames - len(steady)))
    beats = beats[steady[beats]]
    energy = arms.speed.max(axis=1)
    out, k = [], 0
    for i, b in enumerate(beats):
        period = np.median(np.diff(beats[max(0, i - 4):i + 5])) if len(beats) > 1 else FPS / 2
        ahead = energy[b:min(n_frames, b + int(2 * period) + 1)].mean()
        every = 1 if ahead >= FAST_ARM else 2 if ahead >= SLOW_ARM else 4
        while every < 4 and every * period < MIN_CHANGE_SECONDS * FPS:
            every *= 2
        if k % every == 0:
            out.append((int(b), True))
        k += 1
    # No steady beat: change where the arms turn (a dip of the wrist speed) while they move.
    smooth = gaussian_filter1d(energy, 3.0, mode="nearest")
    near_beat = np.zeros(n_frames, bool)
    for f, _ in out:
        near_beat[max(0, f - MIN_UNSTEADY_GAP // 2):f + MIN_UNSTEADY_GAP // 2 + 1] = True
    last = -MIN_UNSTEADY_GAP
    for t in range(1, n_frames - 1):
        if steady[t] or near_beat[t]:
            continue
        window = smooth[max(0, t - 6):t + 7]
        busy = smooth[max(0, t - 15):t + 16].max() > 0.6 * SLOW_ARM
        if smooth[t] <= window.min() and busy and t - last >= MIN_UNSTEADY_GAP:
            out.append((t, False))
            last = t
    return sorted(out)


def choose_pose(speed: float, outward: float, current: str | None, rng: np.random.Generator,
                style: str = "any") -> HandPose:
    """The next pose of one hand, from its arm over the coming stretch: mean wrist speed (m/s) and its
    strongest swing away from the shoulder (m/s; negative: towards it). Never ``current``."""
    role = ("calm" if speed < SLOW_ARM else "open" if outward > OUTWARD else "closed" if outward < -OUTWARD
            else "accent")
    poses = [p for p in vocabulary(style) if p.name != current]
    first = ROLES if role == "accent" else (role,)
    for roles in (first, ROLES):
        pool = [p for p in poses if p.role in roles]
        if pool:
            break
    weights = np.array([STYLE_WEIGHT if style in p.styles else 1.0 for p in pool])
    return pool[rng.choice(len(pool), p=weights / weights.sum())]


def plan_changes(beats, steady, arms: Arms, n_frames: int, seed: int = 0, style: str = "any") -> list[HandChange]:
    """The pose changes of a dance of n_frames: where (:func:`change_frames`), which pose for each hand
    (:func:`choose_pose`) and how fast."""
    rng = np.random.default_rng([seed, 22])
    frames = change_frames(beats, steady, arms, n_frames)
    current = ["relaxed", "relaxed"]
    out, previous = [], 0
    for i, (f, on_beat) in enumerate(frames):
        end = frames[i + 1][0] if i + 1 < len(frames) else min(n_frames, f + FPS)
        span = slice(f, max(end, f + 1))
        poses = []
        for h in range(2):
            swing = arms.outward[span, h]
            swing = float(swing[np.argmax(np.abs(swing))])           # the strongest swing out (+) or in (−)
            pose = choose_pose(float(arms.speed[span, h].mean()), swing, current[h], rng, style)
            poses.append(pose.name)
        speed = float(arms.speed[span].max(axis=1).mean())
        blend = float(np.interp(speed, (SLOW_ARM, FAST_ARM), BLEND_FRAMES))
        blend = max(2.0, min(blend, 0.7 * (f - previous) if out else blend))
        out.append(HandChange(f, (poses[0], poses[1]), blend, on_beat))
        current, previous = poses, f
    return out


# ---------------------------------------------------------------------------------------------------
# The fingers

def _lag_kernel(omega: float) -> np.ndarray:
    """Impulse response of a critically damped second-order follower at 30 fps (non-negative, sums to 1)."""
    n = np.arange(int(np.ceil(10 * FPS / omega)) + 1)
    h = n * np.exp(-omega * n / FPS)
    return h / h.sum()


LAG_FRAMES = float((np.arange(len(_lag_kernel(LAG_OMEGA[0]))) * _lag_kernel(LAG_OMEGA[0])).sum())


def _follow(x: np.ndarray, omega: float) -> np.ndarray:
    """(T, ...) causal convex filtering along time (the first value held before the start)."""
    k = _lag_kernel(omega)
    padded = np.concatenate([np.repeat(x[:1], len(k) - 1, axis=0), x], axis=0)
    out = np.zeros_like(x)
    for i, w in enumerate(k):
        out += w * padded[len(k) - 1 - i:len(k) - 1 - i + len(x)]
    return out


def target_angles(changes: list[HandChange], n_frames: int, lead: float = 0.0) -> np.ndarray:
    """(T, 2, 15, 3) the authored poses held between changes, each blended in (smoothstep) over its blend
    so that it is reached ``lead`` frames before its change's frame."""
    t = np.arange(n_frames, dtype=np.float64)
    out = np.broadcast_to(POSES["relaxed"].angles, (n_frames, 2) + POSES["relaxed"].angles.shape).copy()
    for c in changes:
        end = c.frame - lead
        x = np.clip((t - (end - c.blend)) / c.blend, 0.0, 1.0)
        w = (x * x * (3 - 2 * x))[:, None, None]
        for h in range(2):
            out[:, h] = out[:, h] * (1 - w) + POSES[c.poses[h]].angles * w
    return out


def finger_motion(changes: list[HandChange], arms: Arms, n_frames: int) -> np.ndarray:
    """(T, 2, 15, 3) finger angles (rad): the targets, bent by the knuckles' acceleration, clamped to the
    joint limits, then lagged (each angle stays inside its limits)."""
    angles = target_angles(changes, n_frames, lead=LAG_FRAMES)
    bend = np.clip(INERTIA_GAIN * arms.across, -MAX_INERTIA, MAX_INERTIA)        # (T, 2)
    for level in range(3):
        for f in range(5):
            weight = INERTIA_WEIGHT[level] * (THUMB_INERTIA if f == 4 else 1.0)
            angles[:, :, 3 * f + level, 0] += weight * bend
    angles = clamp_to_limits(angles)
    for level in range(3):
        angles[:, :, level::3] = _follow(angles[:, :, level::3], LAG_OMEGA[level])
    return angles


@dataclass
class HandLayer:
    """What :func:`add_hand_motion` did. vector: (T, 319) with the new hands (or the input, unchanged,
    when ``applied`` is False); changes: the pose changes; network_speed: the input's mean finger speed
    (rad/s); angles: (T, 2, 15, 3) the finger angles written (None when not applied)."""

    vector: np.ndarray
    applied: bool
    network_speed: float
    changes: list[HandChange] = field(default_factory=list)
    angles: np.ndarray | None = None
    style: str = "any"

    @property
    def note(self) -> str | None:
        """One line when the layer left the network's moving hands alone, else None."""
        if self.applied:
            return None
        return (f"the model moves its own fingers ({self.network_speed:.2f} rad/s on average), so its hands are "
                "kept (no procedural hand motion)")


def add_hand_motion(vector: np.ndarray, rest_joints, beats, steady: np.ndarray | None = None, seed: int = 0,
                    style: str = "any", kept: np.ndarray | None = None, network_speed: float | None = None,
                    force: bool = False) -> HandLayer:
    """The dance ((T, 319), finished: beat-synced and foot-locked) with procedural fingers.

    beats: frame indices of the song's beats; steady: (T,) bool, where the song has a steady beat (None:
    between the first and the last beat); seed: the dance's seed; style: a style name (``--style``; its own
    shapes, where ``body.hand_poses`` has some, join the general ones); kept: (T, 319) bool numbers an edit keeps (kept hand channels
    stay exactly as they are). network_speed: the network's own finger speed (rad/s), measured on the
    dance as it was sampled (default: measured on ``vector``). Unless ``force``, a network whose fingers
    move (over HAND_SPEED_THRESHOLD) keeps its hands and the layer returns the dance unchanged."""
    vector = np.asarray(vector, np.float32)
    if network_speed is None:
        network_speed = network_hands_move(vector, kept)[1]
    if not force and network_speed > HAND_SPEED_THRESHOLD:
        return HandLayer(vector, False, network_speed, style=style)
    n = len(vector)
    arms = read_arms(vector, rest_joints)
    changes = plan_changes(beats, steady, arms, n, seed, style)
    angles = finger_motion(changes, arms, n)
    frames = hand_frames(np.asarray(rest_joints))
    new = np.stack([rotations_from_angles(angles[:, h], frames[h]) for h in range(2)], axis=1)   # (T, 2, 15, 3, 3)
    out = vector.copy()
    if kept is not None and np.asarray(kept)[:, HAND_ROTATIONS].any():
        hand_kept = np.asarray(kept)[:, HAND_ROTATIONS]
        weight = ease_away_from(hand_kept.any(axis=1), GUARD + 1)
        new = _blend(hand_rotations(vector), new, weight)
        out[:, HAND_ROTATIONS] = _to_6d(new).reshape(n, -1)
        out[:, HAND_ROTATIONS] = np.where(hand_kept, vector[:, HAND_ROTATIONS], out[:, HAND_ROTATIONS])
    else:
        out[:, HAND_ROTATIONS] = _to_6d(new).reshape(n, -1)
    return HandLayer(out, True, network_speed, changes, angles, style)


def _blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Rotations a → b (T, ...,  3, 3) by weight (T,) in [0, 1], along the geodesic (slerp)."""
    from scipy.spatial.transform import Rotation

    shape = a.shape
    ra = Rotation.from_matrix(a.reshape(-1, 3, 3))
    rb = Rotation.from_matrix(b.reshape(-1, 3, 3))
    w = np.broadcast_to(weight.reshape(-1, *([1] * (len(shape) - 3))), shape[:-2]).reshape(-1)
    rel = (ra.inv() * rb).as_rotvec()
    return (ra * Rotation.from_rotvec(rel * w[:, None])).as_matrix().reshape(shape)
