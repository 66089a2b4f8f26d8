"""The default exports opened in real Blender (Debian's ``blender``, headless): the right skeleton, every
frame at 30 fps, and the body standing on Blender's floor (z = 0), not 0.9 m under it.

Skipped where ``blender`` is absent (``bash scripts/install.sh --test`` installs it as root). Blender
runs ``tests/blender_import.py``, which prints what its own importers made of each file.
"""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from body.body_model import BodyModel
from body.skeleton import N_JOINTS, N_MOTION_JOINTS
from exporters import export_motion
from motion.formats import motion_from_vector

BLENDER = shutil.which("blender")
SCRIPT = Path(__file__).with_name("blender_import.py")
FRAMES = 45
FLOOR_TOLERANCE = 0.03          # metres: the soles' floor is a percentile over the clip, as in the videos

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(BLENDER is None, reason="needs Blender (apt-get install blender python3-numpy, or "
                                                         "bash scripts/install.sh --test as root)")]


def blender_import(*files: Path) -> dict[str, dict]:
    run = subprocess.run([BLENDER, "-b", "--factory-startup", "--python", str(SCRIPT), "--", *map(str, files)],
                         capture_output=True, text=True, timeout=600)
    found = {}
    for line in run.stdout.splitlines():
        if line.startswith("BLENDER_IMPORT "):
            result = json.loads(line.split(" ", 1)[1])
            found[Path(result["file"]).suffix + ("" if "raw" not in Path(result["file"]).stem else "_raw")] = result
    assert len(found) == len(files), f"Blender said:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    for result in found.values():
        assert "error" not in result, result["error"]
    return found


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    d = tmp_path_factory.mktemp("blender")
    body = BodyModel()
    motion = motion_from_vector(np.load("assets/motion/demo_dance.npy")[:FRAMES])
    files = [export_motion(motion, d / "dance.glb", None, body), export_motion(motion, d / "dance.bvh", None, body),
             export_motion(motion, d / "dance_raw.glb", None, body, ground=False)]
    return blender_import(*files)


def test_blender_opens_the_default_glb_standing_on_the_floor(imported):
    glb = imported[".glb"]
    assert (glb["armatures"], glb["bones"], glb["meshes"]) == (1, N_JOINTS, 1)
    # Blender places glTF keys (seconds) at its scene's rate: 30 fps gives one key per frame, 0 … T-1.
    assert (glb["frames"], glb["first"], glb["last"], glb["fps"]) == (FRAMES, 0, FRAMES - 1, 30)
    lowest = np.array(list(glb["lowest"].values()))
    assert len(lowest) >= 4 and np.abs(lowest).max() < FLOOR_TOLERANCE, glb["lowest"]   # the soles on z = 0


def test_blender_opens_the_default_bvh_standing_on_the_floor(imported):
    bvh = imported[".bvh"]
    assert (bvh["armatures"], bvh["bones"]) == (1, N_MOTION_JOINTS)
    assert bvh["frames"] == FRAMES and bvh["last"] - bvh["first"] == FRAMES - 1 and abs(bvh["fps"] - 30) < 1e-3
    lowest = np.array(list(bvh["lowest"].values()))        # the lowest joints: ankles and toes, above the soles
    assert (lowest > 0).all() and lowest.max() < 0.12, bvh["lowest"]


def test_the_body_frame_stays_on_request(imported):
    """--no_ground: the body model's own frame, pelvis at its rest height over the origin, feet below it."""
    lowest = np.array(list(imported[".glb_raw"]["lowest"].values()))
    assert (lowest < -0.8).all(), imported[".glb_raw"]["lowest"]
