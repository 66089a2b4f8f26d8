"""The SMPL-X joint tree and the sizes of the motion vectors built on it.

Every size used elsewhere in the project is derived from the names here (SPEC §3).
"""

N_JOINTS = 55            # SMPL-X joints: 22 body, jaw, 2 eyes, 2 × 15 hand
N_BODY_JOINTS = 22       # pelvis (global orientation) … right wrist
N_HAND_JOINTS = 15       # per hand: index, middle, pinky, ring, thumb (3 each)
N_MOTION_JOINTS = N_BODY_JOINTS + 2 * N_HAND_JOINTS   # 52: SMPL-X without jaw and eyes (SMPL-H order)

JAW, LEFT_EYE, RIGHT_EYE = 22, 23, 24
LEFT_HAND_START = 25
RIGHT_HAND_START = LEFT_HAND_START + N_HAND_JOINTS    # 40

PARENTS = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
    20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
    21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53,
)

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "jaw", "left_eye", "right_eye",
) + tuple(f"{side}_{finger}{k}" for side in ("left", "right") for finger in _FINGERS for k in (1, 2, 3))

# The 52 joints of the motion formats, as indices into the 55 SMPL-X joints.
MOTION_JOINTS = tuple(range(N_BODY_JOINTS)) + tuple(range(LEFT_HAND_START, N_JOINTS))

# Foot contact joints in the 319-d vector's order: left ankle, right ankle, left foot, right foot.
FOOT_JOINTS = (7, 8, 10, 11)

ROT6D = 6
N_CONTACTS = len(FOOT_JOINTS)   # 4
TRANS_DIM = 3
MOTION_DIM_315 = TRANS_DIM + N_MOTION_JOINTS * ROT6D                  # dataset files (T, 315)
MOTION_DIM = N_CONTACTS + MOTION_DIM_315                               # model vector (T, 319)
BODY_DIM = N_CONTACTS + TRANS_DIM + N_BODY_JOINTS * ROT6D              # 139: body decoder's output
HAND_DIM = 2 * N_HAND_JOINTS * ROT6D                                   # 180: hand decoder's output
AXIS_ANGLE_DIM = N_MOTION_JOINTS * 3                                   # 156: SMPL-H style poses

FPS = 30

# Left/right joint pairs (indices into the 55 joints), for mirroring.
def _mirror_map():
    index = {name: i for i, name in enumerate(JOINT_NAMES)}
    out = []
    for name in JOINT_NAMES:
        if name.startswith("left_"):
            out.append(index["right_" + name[5:]])
        elif name.startswith("right_"):
            out.append(index["left_" + name[6:]])
        else:
            out.append(index[name])
    return tuple(out)


MIRROR = _mirror_map()

assert len(PARENTS) == len(JOINT_NAMES) == N_JOINTS
assert MOTION_DIM == 319 and MOTION_DIM_315 == 315 and BODY_DIM == 139 and HAND_DIM == 180

FLOOR_PERCENTILE = 2.0   # the floor under a dance: this percentile over frames of the lower toe's height


def floor_height(toe_heights) -> float:
    """The floor a dancer stands on (metres) from (T, 2) heights of the two toes: the 2nd percentile
    over frames of the lower toe's height (robust to a few frames with a foot through the floor).
    Evaluation (clean protocol), foot lock and retrieval all ground a dance this way."""
    import numpy as np

    return float(np.percentile(np.min(np.asarray(toe_heights, np.float64), axis=1), FLOOR_PERCENTILE))
