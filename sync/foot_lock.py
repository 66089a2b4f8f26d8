"""Foot locking: planted feet stay where they landed (SPEC §3 motion vector, §8 foot skating).

:func:`lock_feet` takes a (T, 319) model vector (or a (T, 315) dataset vector) and the body's rest
joints and returns a new vector whose planted feet do not slide:

1. **Contacts.** The legs are posed by forward kinematics (pelvis → hip → knee → ankle → foot; the
   legs hang from the pelvis, so nothing else is needed). The floor is the 2nd percentile over
   frames of the lower toe's height, as ``eval.metrics.floor_from_toes`` grounds a dance. A foot is
   planted in a frame when its ankle is at most ``ankle_height`` and its toe at most ``toe_height``
   above the floor and the foot moves slowly: the horizontal speed of its ankle and toe (the mean
   of the steps into and out of the frame, the larger of the two joints) is at most ``max_speed``,
   or twice that where the network's own contact channels ([0:4], left/right ankle, left/right foot)
   say the foot is down. Gaps of at most ``max_gap`` frames inside a contact are filled; contacts
   shorter than ``min_span`` frames are ignored.
2. **Targets.** Each contact span pins its ankle at the mean of the ankle's positions over the span
   (all three axes: the smallest correction that holds the foot still) and holds the foot's world
   orientation at the span's mean orientation (chordal mean), so the toes stay put too instead of
   pivoting about the ankle. A contact whose ankle wanders more than ``max_drift`` from where it began
   is cut into pieces with ``blend`` free frames between them, where the foot moves on to its next
   place (the network's feet can wander half a metre in one long contact; one pin would bend the legs
   too far). The corrections (position, and orientation as a rotation vector) apply in full inside a
   span and fade out over ``blend`` frames on each side with a raised cosine; between two spans that
   are close together they are interpolated from one to the other, so there is no pop.
3. **Reach.** Where a corrected ankle is further from its hip than the leg reaches with the knee
   bent by ``min_knee_bend`` degrees (or than it was in the original frame, if that was further),
   the root is lowered (translation y) just enough: the needed drop is spread by a running maximum
   and smoothed by a Hann window of the same radius (``root_smoothing`` frames), which never falls
   below the need. Both feet keep their world positions while the root is lowered (the free foot's
   target is its own original position), so only the knees bend more.
4. **Two-bone IK** (analytic, per frame, vectorised): the knee is turned about its hinge (the normal
   of the hip–knee–ankle plane; the knee's own x axis when the leg is straight) so the hip–ankle
   distance equals the hip–target distance, then the whole leg is turned about the hip by the
   shortest arc onto the target. The ankle's local rotation is recomputed so the foot has the held
   world orientation (the toes follow the ankle).

Only the local rotations of the hips, knees and ankles (joints 1, 2, 4, 5, 7, 8) in the frames a
correction touches, and the root height where it had to be lowered, change; every other number of
the vector (contact channels, root x/z, spine, arms, hands, untouched frames) is bit-identical.
Numpy throughout: about 20 ms for 30 s of dance, under a second for 10 minutes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

from body.skeleton import MOTION_DIM, MOTION_DIM_315, ROT6D, floor_height
from motion.edit import LEG_ROTATION_JOINTS, ease_away_from, fixed_frames
from motion.layout import layout_of

# Per side (left, right): SMPL-X joints hip, knee, ankle, foot (toe), and the vector's contact
# channels (ankle, foot) among [0:4] = (left ankle, right ankle, left foot, right foot).
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
CONTACT_CHANNELS = ((0, 2), (1, 3))
UP = 1

ANKLE_HEIGHT = 0.10       # m above the floor (the FSR protocol counts contact at ≤ 0.08 / ≤ 0.05)
TOE_HEIGHT = 0.07
MAX_SPEED = 0.03          # m per frame, horizontal
MIN_SPAN = 3              # frames: shorter contacts are ignored
MAX_GAP = 2               # frames: shorter breaks inside a contact are filled
BLEND = 4                 # frames of fade on each side of a span
MAX_DRIFT = 0.2           # m: a contact whose foot wanders further is cut into pieces (None: never)
MIN_KNEE_BEND = 8.0       # degrees: the straightest knee the solver makes (unless the input was straighter)
ROOT_SMOOTHING = 6        # frames: radius of the root-drop smoothing
MAX_ROOT_DROP = 0.25      # m: the root is never lowered more than this


@dataclass(frozen=True)
class FootLock:
    """What :func:`lock_feet` did.

    vector: the corrected vector (same shape and dtype float32 as the input);
    contacts: (T, 2) bool, the frames in which the left / right foot was planted;
    root_drop: (T,) metres the root was lowered;
    max_correction: the largest ankle correction applied (metres).
    """

    vector: np.ndarray
    contacts: np.ndarray
    root_drop: np.ndarray
    max_correction: float

    @property
    def changed(self) -> bool:
        return bool(self.contacts.any())


# ---------------------------------------------------------------------------------------------
# Small numpy rotation helpers (batched over leading dimensions)


def _matrices_from_6d(d6: np.ndarray) -> np.ndarray:
    """(..., 6) first two rows → (..., 3, 3), Gram–Schmidt (as ``body.rotations``)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    return np.stack((b1, b2, np.cross(b1, b2)), axis=-2)


def _rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: unit axes (..., 3) and angles (...) → (..., 3, 3)."""
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack((zero, -z, y, z, zero, -x, -y, x, zero), axis=-1).reshape(*axis.shape[:-1], 3, 3)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1)
    return v / np.maximum(n, 1e-12)[..., None], n


def _apply(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (m @ v[..., None])[..., 0]


def _shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) turning directions a onto b by the smallest angle."""
    axis, s = _unit(np.cross(a, b))
    c = (a * b).sum(-1)
    angle = np.arctan2(s, c)
    angle = np.where(s < 1e-12, 0.0, angle)        # parallel: identity (anti-parallel cannot occur here)
    return _rotation(axis, angle)


# ---------------------------------------------------------------------------------------------
# Contacts


def _runs(mask: np.ndarray) -> np.ndarray:
    """(K, 2) [start, end) of the runs of True in a 1-D bool array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.stack((np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]), axis=1)


def clean_contacts(mask: np.ndarray, min_span: int = MIN_SPAN, max_gap: int = MAX_GAP) -> np.ndarray:
    """Fill breaks of at most ``max_gap`` frames between contacts, then drop contacts shorter than
    ``min_span`` frames. 1-D bool → 1-D bool."""
    out = np.asarray(mask, bool).copy()
    runs = _runs(~out)
    for s, e in runs:
        if 0 < s and e < len(out) and e - s <= max_gap:   # an inner break, not the clip's edges
            out[s:e] = True
    for s, e in _runs(out):
        if e - s < min_span:
            out[s:e] = False
    return out


def split_drifting(ankle: np.ndarray, contact: np.ndarray, max_drift: float, gap: int,
                   min_span: int = MIN_SPAN) -> np.ndarray:
    """Cut contacts whose ankle wanders horizontally more than ``max_drift`` metres from where the
    piece began into pieces, leaving ``gap`` free frames between them (the foot moves on there)."""
    out = contact.copy()
    flat = ankle[:, [0, 2]]
    for s, e in _runs(contact):
        start = s
        t = s
        while t < e:
            if np.hypot(*(flat[t] - flat[start])) > max_drift:
                out[t:min(t + gap, e)] = False
                start = t = t + gap
                continue
            t += 1
    for s, e in _runs(out):
        if e - s < min_span:
            out[s:e] = False
    return out


def _horizontal_speed(p: np.ndarray) -> np.ndarray:
    """(T, 3) positions → (T,) mean horizontal step into and out of each frame (m/frame)."""
    step = np.linalg.norm(np.diff(p[:, [0, 2]], axis=0), axis=-1)
    if len(step) == 0:
        return np.zeros(len(p))
    into = np.concatenate((step[:1], step))
    out = np.concatenate((step, step[-1:]))
    return 0.5 * (into + out)


# ---------------------------------------------------------------------------------------------
# Corrections


def _span_means(values: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """(T, ...) values and (K, 2) spans → (K, ...) the mean over each span."""
    csum = np.concatenate((np.zeros_like(values[:1]), np.cumsum(values, axis=0)))
    return (csum[spans[:, 1]] - csum[spans[:, 0]]) / (spans[:, 1] - spans[:, 0]).reshape(-1, *[1] * (values.ndim - 1))


def _fill_gaps(correction: np.ndarray, contact: np.ndarray, blend: int) -> np.ndarray:
    """(T, d) corrections, valid in the contact frames → the same inside the spans, and outside them
    each span's edge correction faded by a raised cosine over ``blend`` frames; where the fades of
    two spans meet, their weights are normalised so the correction passes from one to the other."""
    n = len(correction)
    out = np.where(contact[:, None], correction, 0.0)
    spans = _runs(contact)
    if not len(spans):
        return out
    starts, ends = spans[:, 0], spans[:, 1]
    t = np.arange(n)
    prev_idx = np.searchsorted(ends, t, side="right") - 1          # spans that ended at or before t
    next_idx = np.searchsorted(starts, t, side="left")              # spans that start at or after t
    has_prev, has_next = prev_idx >= 0, next_idx < len(spans)
    prev_end = np.where(has_prev, ends[np.clip(prev_idx, 0, None)] - 1, 0)
    next_start = np.where(has_next, starts[np.clip(next_idx, None, len(spans) - 1)], n - 1)
    gap = ~contact
    width = blend + 1.0

    def fade(dist, ok):
        x = np.clip(dist / width, 0.0, 1.0)
        return np.where(ok & gap & (dist > 0), 0.5 * (1 + np.cos(np.pi * x)), 0.0)

    w_prev = fade((t - prev_end).astype(float), has_prev)
    w_next = fade((next_start - t).astype(float), has_next)
    scale = np.maximum(w_prev + w_next, 1.0)
    w_prev, w_next = w_prev / scale, w_next / scale
    filled = w_prev[:, None] * out[prev_end] + w_next[:, None] * out[next_start]
    return np.where(gap[:, None], filled, out)


def _mean_rotation(mats: np.ndarray) -> np.ndarray:
    """(K, 3, 3) averaged rotation matrices → (K, 3, 3) the nearest rotations (chordal mean)."""
    u, _, vt = np.linalg.svd(mats)
    d = np.sign(np.linalg.det(u @ vt))
    u = u.copy()
    u[:, :, 2] *= d[:, None]
    return u @ vt


def _log(mats: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations (angle < π) → (..., 3) rotation vectors."""
    cos = np.clip((np.trace(mats, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
    angle = np.arccos(cos)
    skew = np.stack((mats[..., 2, 1] - mats[..., 1, 2], mats[..., 0, 2] - mats[..., 2, 0],
                     mats[..., 1, 0] - mats[..., 0, 1]), axis=-1)
    sin = np.sin(angle)
    factor = np.where(sin > 1e-8, angle / (2 * np.maximum(sin, 1e-8)), 0.5)
    return skew * factor[..., None]


def _exp(vectors: np.ndarray) -> np.ndarray:
    axis, angle = _unit(vectors)
    return _rotation(axis, angle)


def _smooth_drop(need: np.ndarray, radius: int) -> np.ndarray:
    """A smooth curve ≥ need: running maximum over ±radius, then a Hann average of the same radius."""
    if not need.any() or radius <= 0:
        return need.copy()
    spread = maximum_filter1d(need, size=2 * radius + 1, mode="nearest")
    window = np.hanning(2 * radius + 3)[1:-1]
    window /= window.sum()
    padded = np.pad(spread, radius, mode="edge")
    return np.convolve(padded, window, mode="valid")


def _touched(leg: dict) -> np.ndarray:
    """(T,) frames in which a leg's ankle position or orientation is corrected."""
    moved = np.abs(leg["offset"]).sum(-1) > 0
    return moved | leg["offset_turn"] if "offset_turn" in leg else moved


# ---------------------------------------------------------------------------------------------


def lock_feet(vector, rest_joints, *, ankle_height: float = ANKLE_HEIGHT, toe_height: float = TOE_HEIGHT,
              max_speed: float = MAX_SPEED, min_span: int = MIN_SPAN, max_gap: int = MAX_GAP,
              blend: int = BLEND, min_knee_bend: float = MIN_KNEE_BEND, root_smoothing: int = ROOT_SMOOTHING,
              max_root_drop: float = MAX_ROOT_DROP, max_drift: float | None = MAX_DRIFT, lock_orientation: bool = True,
              use_predicted: bool = True, keep: np.ndarray | None = None) -> FootLock:
    """Plant the feet of a (T, 319) or (T, 315) motion vector posed on ``rest_joints`` ((≥22, 3)
    metres, e.g. ``BodyModel().rest_joints``). See the module docstring; returns a :class:`FootLock`.

    keep: optional (T, 319 | 315) mask of an edit (``motion.edit``): in frames where a hip, knee or
    ankle rotation is kept the legs are not touched, in frames where the root translation is kept the
    root is not lowered, and the corrections ease in over ``blend`` frames beside those frames."""
    vec = np.asarray(vector, np.float32)
    if vec.ndim != 2 or vec.shape[1] not in (MOTION_DIM, MOTION_DIM_315):
        raise ValueError(f"motion must be (T, {MOTION_DIM}) or (T, {MOTION_DIM_315}), got {vec.shape}")
    rest = np.asarray(rest_joints, np.float64)
    if rest.ndim != 2 or rest.shape[0] < 22 or rest.shape[1] != 3:
        raise ValueError(f"rest joints must be (≥22, 3), got {rest.shape}")
    n = len(vec)
    out = vec.copy()
    layout = layout_of(vec)
    nothing = FootLock(out, np.zeros((n, 2), bool), np.zeros(n), 0.0)
    if n < max(3, min_span):
        return nothing
    rot0 = layout.rotations.start

    def rot_slice(j):
        return slice(rot0 + j * ROT6D, rot0 + (j + 1) * ROT6D)

    trans = vec[:, layout.translation].astype(np.float64)
    pelvis_rot = _matrices_from_6d(vec[:, rot_slice(0)].astype(np.float64))        # (T, 3, 3)
    pelvis = rest[0] + trans

    # Forward kinematics of both legs.
    legs = []
    for hip_j, knee_j, ankle_j, foot_j in LEGS:
        local = {j: _matrices_from_6d(vec[:, rot_slice(j)].astype(np.float64)) for j in (hip_j, knee_j, ankle_j)}
        w_hip = pelvis_rot @ local[hip_j]
        w_knee = w_hip @ local[knee_j]
        w_ankle = w_knee @ local[ankle_j]
        hip = pelvis + _apply(pelvis_rot, rest[hip_j] - rest[0])
        knee = hip + _apply(w_hip, rest[knee_j] - rest[hip_j])
        ankle = knee + _apply(w_knee, rest[ankle_j] - rest[knee_j])
        toe = ankle + _apply(w_ankle, rest[foot_j] - rest[ankle_j])
        legs.append(dict(joints=(hip_j, knee_j, ankle_j), w_hip=w_hip, w_knee=w_knee, w_ankle=w_ankle,
                         hip=hip, knee=knee, ankle=ankle, toe=toe,
                         thigh=np.linalg.norm(rest[knee_j] - rest[hip_j]),
                         shin=np.linalg.norm(rest[ankle_j] - rest[knee_j])))
    floor = floor_height(np.stack([legs[0]["toe"][:, UP], legs[1]["toe"][:, UP]], axis=1))

    # 1. Contacts and 2. corrections.
    contacts = np.zeros((n, 2), bool)
    for side, leg in enumerate(legs):
        low = ((leg["ankle"][:, UP] - floor <= ankle_height) & (leg["toe"][:, UP] - floor <= toe_height))
        speed = np.maximum(_horizontal_speed(leg["ankle"]), _horizontal_speed(leg["toe"]))
        limit = np.full(n, max_speed)
        if use_predicted and layout.n_contacts:
            predicted = (vec[:, list(CONTACT_CHANNELS[side])] > 0.5).any(axis=1)
            limit = np.where(predicted, 2 * max_speed, max_speed)
        planted = clean_contacts(low & (speed <= limit), min_span, max_gap)
        if max_drift:
            planted = split_drifting(leg["ankle"], planted, max_drift, blend, min_span)
        contacts[:, side] = planted
        spans = _runs(planted)
        if not len(spans):
            leg["offset"] = np.zeros((n, 3))
            leg["goal"] = leg["ankle"]
            continue
        label = np.repeat(np.arange(len(spans)), spans[:, 1] - spans[:, 0])   # span of each planted frame
        offset = np.zeros((n, 3))
        offset[planted] = _span_means(leg["ankle"], spans)[label] - leg["ankle"][planted]
        leg["offset"] = _fill_gaps(offset, planted, blend)
        leg["goal"] = leg["ankle"] + leg["offset"]
        if lock_orientation:   # the foot keeps one orientation through each span (no pivoting toes)
            turn = np.zeros((n, 3))
            held = _mean_rotation(_span_means(leg["w_ankle"], spans))[label]
            turn[planted] = _log(held @ np.swapaxes(leg["w_ankle"][planted], -1, -2))
            turn = _fill_gaps(turn, planted, blend)
            leg["turn"] = turn
            leg["w_ankle_raw"] = leg["w_ankle"]
            leg["w_ankle"] = _exp(turn) @ leg["w_ankle"]
            leg["offset_turn"] = np.abs(turn).sum(-1) > 0
    if not contacts.any():
        return nothing
    if keep is not None:   # an edit's kept legs stay as they are; corrections fade in beside them
        legs_fixed = fixed_frames(keep, np.concatenate([np.arange(rot_slice(j).start, rot_slice(j).stop)
                                                        for j in LEG_ROTATION_JOINTS]))
        legs_free = ease_away_from(legs_fixed, blend + 1)
        for leg in legs:
            leg["offset"] = leg["offset"] * legs_free[:, None]
            leg["goal"] = leg["ankle"] + leg["offset"]
            if "turn" in leg:
                leg["turn"] = leg["turn"] * legs_free[:, None]
                leg["w_ankle"] = _exp(leg["turn"]) @ leg["w_ankle_raw"]
                leg["offset_turn"] = np.abs(leg["turn"]).sum(-1) > 0

    # 3. Reach: how far the root must come down so that no knee straightens past min_knee_bend.
    need = np.zeros(n)
    for leg in legs:
        a, b = leg["thigh"], leg["shin"]
        bend = np.radians(min_knee_bend)
        reach_limit = np.sqrt(a * a + b * b + 2 * a * b * np.cos(bend))
        original = np.linalg.norm(leg["ankle"] - leg["hip"], axis=-1)
        leg["reach"] = np.maximum(reach_limit, original)
        v = leg["hip"] - leg["goal"]
        flat = np.linalg.norm(v[:, [0, 2]], axis=-1)
        height = v[:, UP]
        room = np.sqrt(np.clip(leg["reach"] ** 2 - flat ** 2, 0, None))
        drop = np.clip(height - room, 0, None)
        moved = _touched(leg)
        need = np.maximum(need, np.where(moved, drop, 0.0))
    need = np.minimum(need, max_root_drop)
    root_drop = np.clip(_smooth_drop(need, root_smoothing), 0, max_root_drop)
    if keep is not None:   # a kept root translation (or kept legs) is never lowered
        root_drop = root_drop * ease_away_from(fixed_frames(keep, layout.translation) | legs_fixed, blend + 1)
    dropped = root_drop > 0
    if dropped.any():
        up = layout.translation.start + UP
        out[:, up] = np.where(dropped, (trans[:, UP] - root_drop).astype(np.float32), vec[:, up])
        lowered = np.zeros((n, 3))
        lowered[:, UP] = root_drop
        for leg in legs:
            for key in ("hip", "knee", "ankle"):
                leg[key] = leg[key] - lowered

    # 4. Two-bone IK in the frames a correction or the root drop touches.
    max_correction = 0.0
    for leg in legs:
        rows = np.nonzero(_touched(leg) | dropped)[0]
        if not len(rows):
            continue
        max_correction = max(max_correction, float(np.linalg.norm(leg["offset"], axis=-1).max()))
        hip, knee, ankle, goal = (leg[k][rows] for k in ("hip", "knee", "ankle", "goal"))
        w_hip, w_knee, w_ankle = (leg[k][rows] for k in ("w_hip", "w_knee", "w_ankle"))
        a, b = leg["thigh"], leg["shin"]
        u1, _ = _unit(knee - hip)
        u2, _ = _unit(ankle - knee)
        bend_now = np.arccos(np.clip((u1 * u2).sum(-1), -1, 1))
        dist = np.clip(np.linalg.norm(goal - hip, axis=-1), abs(a - b) + 1e-6, leg["reach"][rows])
        bend_new = np.arccos(np.clip((dist ** 2 - a * a - b * b) / (2 * a * b), -1, 1))
        hinge, size = _unit(np.cross(u1, u2))
        fallback = w_knee[:, :, 0]                            # the knee's x axis: SMPL-X's flexion axis
        fallback, _ = _unit(fallback - (fallback * u1).sum(-1, keepdims=True) * u1)
        hinge = np.where((size < 1e-6)[:, None], fallback, hinge)
        turn_knee = _rotation(hinge, bend_new - bend_now)
        ankle_bent = knee + _apply(turn_knee, ankle - knee)
        turn_leg = _shortest_arc(_unit(ankle_bent - hip)[0], _unit(goal - hip)[0])
        new_hip = turn_leg @ w_hip
        new_knee = turn_leg @ turn_knee @ w_knee
        root = pelvis_rot[rows]
        local_hip = np.swapaxes(root, -1, -2) @ new_hip
        local_knee = np.swapaxes(new_hip, -1, -2) @ new_knee
        local_ankle = np.swapaxes(new_knee, -1, -2) @ w_ankle  # the foot keeps its world orientation
        for j, m in zip(leg["joints"], (local_hip, local_knee, local_ankle)):
            out[rows, rot_slice(j)] = m[:, :2, :].reshape(len(rows), ROT6D).astype(np.float32)
    return FootLock(out, contacts, root_drop, max_correction)
