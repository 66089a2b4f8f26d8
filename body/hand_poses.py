"""Hand anatomy for the procedural hand layer: finger-joint frames, joint limits and a pose vocabulary.

Every finger joint is described by three angles (radians in code, degrees in the tables below):

- **flex**: flexion, the finger bending towards the palm (negative: hyperextension, bending back);
- **abd**: abduction, the finger swinging sideways in the palm's plane; positive is towards the thumb
  side (radial), negative towards the little finger (ulnar). For the thumb, positive moves it away
  from the index finger, negative brings it across the palm;
- **twist**: a roll about the finger's own length (only the thumb's base uses it: pronation, which
  turns the thumb pad to face the fingers; positive turns the pad towards the palm).

The axes are the body's own, read from its rest pose (``hand_frames``): both our free body and SMPL-X
rest in a T-pose with flat hands, palms down (−y), the left hand along +x and the right along −x, and
the joints' rest rotations are the identity, so a local rotation acts in those world-aligned axes.
For each finger, ``along`` is its rest direction (knuckle to last joint) flattened into the palm's
plane, ``dorsal`` the normal of the palm pointing out of the back of the hand (+y for both hands at
rest), ``flex axis = dorsal × along`` and ``abd axis = along × radial``. On the left hand that is
flex ≈ −z and abd ≈ −y; on the right flex ≈ +z and abd ≈ +y (checked by rendering the vocabulary:
``benchmarks/bench_hands.py --sheet``). Since each hand's axes come from its own geometry, one set of
angles poses both hands as mirror images.

A joint's local rotation is ``R = exp(abd·â) · exp(twist·t̂) · exp(flex·f̂)``: a universal joint whose
sideways axis is fixed in the parent (the metacarpal) and whose flexion axis moves with the abduction
(as the knuckles do), with the twist between them. :func:`angles_from_rotations` inverts it (the twist,
never above 40°, is the middle Euler angle, so it is unique for every pose within the limits).

Joint limits (``LIMITS``) are our reading of typical active ranges of motion of the adult hand,
written from the anatomy (MCP flexion about 90°, PIP about 100°, DIP about 80°, thumb MCP about 55°
and IP about 80°; a little hyperextension at MCP and DIP; sideways motion only at the knuckles and
the thumb's base), kept a few degrees inside them. They bound every pose we author and every frame the
layer writes (the layer works in these angles and clamps to the box before anything else).

The vocabulary (``POSES``) is authored by us: a relaxed hand (two variants), an open spread hand, a
loose fist, a pointing hand, and for the ``indian`` style a few shapes after classical Indian hand
gestures (hastas) as we understand them from their descriptions: pataka (a flat hand, fingers together,
thumb bent in), tripataka (pataka with the ring finger bent), ardhachandra (half moon: flat fingers,
thumb stretched out), alapadma (a lotus in full bloom: fingers fanned out, each more curved than the
last, towards the little finger) and kartarimukha (scissors: index and middle fingers apart, the others
folded). ``vocabulary(style)`` gives the poses a style may use.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from body.skeleton import LEFT_HAND_START, N_HAND_JOINTS, RIGHT_HAND_START

FINGERS = ("index", "middle", "pinky", "ring", "thumb")   # SMPL-X/SMPL-H order, 3 joints each
ANGLES = ("flex", "abd", "twist")
STYLES = ("any", "modern", "indian", "salsa")              # the style names of issue 22's --style (part 1)
HAND_STARTS = (LEFT_HAND_START, RIGHT_HAND_START)         # first joint (of the 55) of the left, right hand
SIDES = ("left", "right")

# (min, max) degrees of flex, abd, twist for joints 1 (knuckle), 2, 3 of each finger.
_LONG_FINGER = {   # index, middle, ring, pinky: only the sideways range of the knuckle differs
    "index": (-15, 20), "middle": (-12, 12), "ring": (-15, 10), "pinky": (-25, 10),
}
LIMITS_DEG: dict[str, tuple[tuple[tuple[float, float], ...], ...]] = {
    finger: (
        ((-20, 90), abd, (-5, 5)),          # MCP: flexion, sideways swing, a little passive roll
        ((0, 100), (-3, 3), (-3, 3)),      # PIP: a hinge
        ((-10, 80), (-3, 3), (-3, 3)),     # DIP: a hinge, slight hyperextension
    ) for finger, abd in _LONG_FINGER.items()
}
LIMITS_DEG["thumb"] = (
    ((-15, 50), (-25, 40), (-10, 40)),      # CMC: towards the palm, away/across, pronation
    ((-10, 55), (-8, 8), (-5, 10)),         # MCP
    ((-15, 80), (-3, 3), (-3, 3)),          # IP
)


def _limits_array() -> np.ndarray:
    out = np.zeros((N_HAND_JOINTS, 3, 2))
    for f, finger in enumerate(FINGERS):
        out[3 * f:3 * f + 3] = np.asarray(LIMITS_DEG[finger], float)
    return np.deg2rad(out)


LIMITS = _limits_array()   # (15, 3, 2) radians: [joint, (flex, abd, twist), (min, max)] in SMPL-X hand order


@dataclass(frozen=True)
class HandPose:
    """One authored hand shape. angles: (15, 3) radians (flex, abd, twist) per joint in SMPL-X hand order.

    role: how the layer uses it: 'calm' (slow passages), 'open' (fast outward swings), 'closed' (pulling
    in), 'accent' (the rest). styles: the styles that may use it ('any': every style)."""

    name: str
    angles: np.ndarray
    role: str
    styles: tuple[str, ...] = ("any",)


def _pose(name: str, role: str, index, middle, ring, pinky, thumb, styles=("any",)) -> HandPose:
    """Author a pose in degrees: each long finger (MCP flex, PIP flex, DIP flex, MCP abd); the thumb
    (CMC flex, CMC abd, CMC twist, MCP flex, IP flex)."""
    a = np.zeros((N_HAND_JOINTS, 3))
    for f, finger in enumerate(FINGERS[:4]):
        mcp, pip, dip, abd = {"index": index, "middle": middle, "ring": ring, "pinky": pinky}[finger]
        a[3 * f] = (mcp, abd, 0)
        a[3 * f + 1, 0], a[3 * f + 2, 0] = pip, dip
    cmc_flex, cmc_abd, cmc_twist, mcp, ip = thumb
    a[12] = (cmc_flex, cmc_abd, cmc_twist)
    a[13, 0], a[14, 0] = mcp, ip
    return HandPose(name, np.deg2rad(a), role, tuple(styles))


_FOLDED = (68, 80, 42, 0)               # a long finger folded into a loose fist
POSES: dict[str, HandPose] = {p.name: p for p in (
    # relaxed: the hand's resting curl, growing towards the little finger
    _pose("relaxed", "calm", index=(12, 18, 8, 2), middle=(17, 24, 10, 0), ring=(22, 28, 12, -3),
          pinky=(27, 30, 14, -6), thumb=(8, 6, 12, 10, 10)),
    _pose("relaxed_soft", "calm", index=(5, 9, 4, 5), middle=(9, 13, 6, 0), ring=(13, 17, 8, -5),
          pinky=(18, 20, 9, -10), thumb=(4, 14, 6, 5, 5)),
    # open: every finger straight and spread, the thumb out
    _pose("open", "open", index=(-6, 0, 0, 16), middle=(-6, 0, 0, 0), ring=(-6, 0, 0, -10),
          pinky=(-8, 0, 0, -20), thumb=(-5, 34, 0, 0, 0)),
    # loose fist: fingers folded short of the palm, the thumb resting across the index finger's middle joint
    _pose("loose_fist", "closed", index=(60, 75, 40, 0), middle=(64, 78, 40, 0), ring=(68, 80, 40, 0),
          pinky=(72, 80, 40, -2), thumb=(30, -12, 30, 25, 20)),
    # point: the index finger straight, the others folded, the thumb over the middle finger
    _pose("point", "accent", index=(0, 0, 0, 4), middle=_FOLDED, ring=_FOLDED, pinky=(72, 80, 42, -2),
          thumb=(32, -14, 30, 28, 22)),
    # Indian classical-style shapes
    _pose("pataka", "accent", index=(0, 0, 0, -5), middle=(0, 0, 0, 0), ring=(0, 0, 0, 4),
          pinky=(0, 0, 0, 8), thumb=(8, -22, 15, 15, 20), styles=("indian",)),
    _pose("tripataka", "accent", index=(0, 0, 0, -5), middle=(0, 0, 0, 0), ring=(70, 82, 40, 4),
          pinky=(0, 0, 0, 8), thumb=(8, -22, 15, 15, 20), styles=("indian",)),
    _pose("ardhachandra", "open", index=(-4, 0, 0, -5), middle=(-4, 0, 0, 0), ring=(-4, 0, 0, 4),
          pinky=(-4, 0, 0, 8), thumb=(-8, 38, 0, 0, -5), styles=("indian",)),
    _pose("alapadma", "open", index=(2, 6, 2, 18), middle=(12, 12, 6, 4), ring=(24, 18, 10, -10),
          pinky=(36, 24, 14, -22), thumb=(0, 30, 20, 5, 5), styles=("indian",)),
    _pose("kartarimukha", "accent", index=(0, 0, 0, 16), middle=(0, 0, 0, -10), ring=_FOLDED,
          pinky=(72, 80, 42, -2), thumb=(32, -16, 30, 28, 22), styles=("indian",)),
)}
ROLES = ("calm", "open", "closed", "accent")


def vocabulary(style: str = "any") -> tuple[HandPose, ...]:
    """The poses a style may use: the general ones ('any') and the style's own (``indian`` has five; a
    style without poses of its own, ``modern`` and ``salsa`` so far, or a name this module does not know,
    uses the general ones). Adding a style's shapes is adding poses with that name in ``styles``."""
    return tuple(p for p in POSES.values() if "any" in p.styles or style in p.styles)


def within_limits(angles: np.ndarray, tolerance: float = 1e-6) -> np.ndarray:
    """(..., 15, 3) angles → (..., 15, 3) bool: each angle inside its joint limit (± ``tolerance`` rad)."""
    return (angles >= LIMITS[..., 0] - tolerance) & (angles <= LIMITS[..., 1] + tolerance)


def clamp_to_limits(angles: np.ndarray) -> np.ndarray:
    """(..., 15, 3) angles clamped into the joint limits."""
    return np.clip(angles, LIMITS[..., 0], LIMITS[..., 1])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def hand_frames(rest_joints) -> np.ndarray:
    """(2, 15, 3, 3) float64 anatomical axes of each finger joint of the left and right hand, as the
    columns (abd axis, along, flex axis), in the body's rest (= local) frame, from its (55, 3) rest
    joints (metres, y up, T-pose with flat hands palms down)."""
    rest = np.asarray(rest_joints, np.float64)
    out = np.zeros((2, N_HAND_JOINTS, 3, 3))
    for side, start in enumerate(HAND_STARTS):
        joint = {finger: rest[start + 3 * f:start + 3 * f + 3] for f, finger in enumerate(FINGERS)}
        wrist = rest[20 + side]
        across = joint["index"][0] - joint["pinky"][0]                    # knuckles, little finger → index
        dorsal = _unit(np.cross(joint["middle"][0] - wrist, across))
        dorsal = dorsal if dorsal[1] > 0 else -dorsal                     # palms down at rest: the back is up
        radial = _unit(across - across.dot(dorsal) * dorsal)
        for f, finger in enumerate(FINGERS):
            along = joint[finger][2] - joint[finger][0]
            along = _unit(along - along.dot(dorsal) * dorsal)
            flex_axis = np.cross(dorsal, along)
            if finger == "thumb":                 # the thumb's radial side points away from the fingers
                side_dir = _unit(along - (joint["index"][0] - joint["thumb"][0]))
            else:
                side_dir = radial
            abd_axis = dorsal * np.sign(np.cross(along, side_dir).dot(dorsal))   # along × side, made exact
            out[side, 3 * f:3 * f + 3] = np.stack([abd_axis, along, flex_axis], axis=-1)
    return out


def _rodrigues(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """axis (..., 3) unit, angle (...) → (..., 3, 3)."""
    k = np.zeros(axis.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def rotations_from_angles(angles: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(..., 15, 3) angles (flex, abd, twist) of one hand and its (15, 3, 3) frames → (..., 15, 3, 3)
    local rotations ``exp(abd·â) · exp(twist·t̂) · exp(flex·f̂)``."""
    abd_axis, along, flex_axis = frames[..., 0], frames[..., 1], frames[..., 2]
    shape = angles.shape[:-1]
    return (_rodrigues(np.broadcast_to(abd_axis, shape + (3,)), angles[..., 1])
            @ _rodrigues(np.broadcast_to(along, shape + (3,)), angles[..., 2])
            @ _rodrigues(np.broadcast_to(flex_axis, shape + (3,)), angles[..., 0]))


def angles_from_rotations(rotmats: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(..., 15, 3, 3) local rotations of one hand → (..., 15, 3) angles (flex, abd, twist): the
    inverse of :func:`rotations_from_angles` (intrinsic Euler angles about abd, along, flex)."""
    b = frames
    det = np.linalg.det(b)[..., None]                     # a left-handed frame turns the other way
    m = np.swapaxes(b, -1, -2) @ rotmats @ b               # the rotation in (abd, along, flex) coordinates
    # m = Rx(a) · Ry(t) · Rz(f) (each by det·angle): m[0,2] = sin t, m[1,2] = −sin a cos t, m[0,1] = −cos t sin f
    twist = np.arcsin(np.clip(m[..., 0, 2], -1, 1))
    abd = np.arctan2(-m[..., 1, 2], m[..., 2, 2])
    flex = np.arctan2(-m[..., 0, 1], m[..., 0, 0])
    return np.stack([flex, abd, twist], axis=-1) * det
