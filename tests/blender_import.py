"""Run inside Blender: ``blender -b --factory-startup --python tests/blender_import.py -- FILE.glb|FILE.bvh ...``.

Imports each file with Blender's own importers (glTF 2.0; BVH at Scale 0.01, y up) into an empty
scene and prints one JSON line per file, after the marker ``BLENDER_IMPORT``: the bones of its
armature, its keyframed frames, the scene's frame rate, and per sampled frame the lowest point in
metres, z up as Blender shows it (glb: the lowest vertex of the skinned mesh; bvh: the lowest bone
head). tests/test_blender.py reads these lines.
"""
import builtins
import json
import sys

import bpy

_open = builtins.open


def _open_without_universal_newlines(file, mode="r", *args, **kwargs):
    """Blender 3.4's BVH importer opens files with mode 'rU', which Python 3.11 (Debian's Blender
    runs on it) no longer accepts; 'r' reads the same."""
    return _open(file, mode.replace("U", "") if isinstance(mode, str) else mode, *args, **kwargs)


builtins.open = _open_without_universal_newlines
try:   # Blender 3.4's glTF importer uses numpy.bool, gone since numpy 1.24 (Debian 12 ships 1.24)
    import numpy
    if "bool" not in numpy.__dict__:
        numpy.bool = bool
except ImportError:
    pass

MARKER = "BLENDER_IMPORT"
FPS = 30


def clear_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = FPS          # glTF keys (in seconds) land on frames at the scene's rate
    bpy.context.scene.render.fps_base = 1.0


def keyed_frames(armature) -> list[float]:
    action = armature.animation_data.action if armature.animation_data else None
    if action is None:
        return []
    frames = sorted({round(k.co[0], 3) for curve in action.fcurves for k in curve.keyframe_points})
    return frames


def lowest_points(path: str, armature, meshes, frames: list[int]) -> dict:
    scene = bpy.context.scene
    out = {}
    for frame in frames:
        scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        if meshes:
            low = min(min((obj.matrix_world @ v.co).z for v in obj.evaluated_get(depsgraph).to_mesh().vertices)
                      for obj in meshes)
        else:
            low = min((armature.matrix_world @ bone.head).z for bone in armature.pose.bones)
        out[str(frame)] = low
    return out


def inspect(path: str) -> dict:
    clear_scene()
    if path.endswith(".bvh"):
        bpy.ops.import_anim.bvh(filepath=path, global_scale=0.01, axis_forward="-Z", axis_up="Y",
                                update_scene_fps=True, update_scene_duration=True)
    else:
        bpy.ops.import_scene.gltf(filepath=path)
    scene = bpy.context.scene
    armatures = [o for o in scene.objects if o.type == "ARMATURE"]
    meshes = [o for o in scene.objects if o.type == "MESH"]
    armature = armatures[0]
    frames = keyed_frames(armature)
    first, last = int(frames[0]), int(frames[-1])
    samples = sorted({first, (first + last) // 2, last, first + (last - first) // 4, first + 3 * (last - first) // 4})
    return {"file": path, "armatures": len(armatures), "bones": len(armature.data.bones), "meshes": len(meshes),
            "frames": len(frames), "first": first, "last": last,
            "fps": scene.render.fps / scene.render.fps_base, "lowest": lowest_points(path, armature, meshes, samples)}


def main():
    files = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    for path in files:
        try:
            result = inspect(path)
        except Exception as e:     # report it to the test rather than a Blender traceback alone
            result = {"file": path, "error": f"{type(e).__name__}: {e}"}
        print(MARKER, json.dumps(result), flush=True)


main()
