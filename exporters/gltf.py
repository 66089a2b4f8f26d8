"""Writing a dance as a skinned, animated glTF 2.0 binary (``.glb``) that any viewer or engine opens.

Structure of the file (metres, y up, the body faces +z — glTF's own conventions):

- nodes 0…54: the 55 SMPL-X joints (names from ``body/skeleton.py``), each a child of its parent;
  rest transform = translation from the parent's rest joint (the pelvis: its rest position),
  rotation identity; node 55: the skinned body mesh, at the scene root beside the pelvis;
- one mesh primitive: POSITION (the rest template, with min/max), NORMAL, JOINTS_0 / WEIGHTS_0 (the
  four largest skin weights of each vertex, renormalised to sum 1), uint32 triangle indices, one
  plain material;
- one skin over the 55 joints, inverse bind matrices = the inverse rest world transforms;
- one animation, keys at 30 fps (LINEAR): a rotation channel (quaternions x y z w) for every joint
  and a translation channel for the pelvis (its world position per frame).

Plain linear blend skinning: smplx's pose-corrective blend shapes are not exported, so the mesh
differs slightly from the video's near bent joints; joint positions are exact.

pygltflib writes the file: it models the glTF schema as dataclasses and handles the GLB container
(header, JSON and BIN chunks, padding), which trimesh's exporter cannot do for skins and
animations; the tests read files back with it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from body.skeleton import FPS, JOINT_NAMES, PARENTS

N_INFLUENCES = 4                 # glTF's JOINTS_0 / WEIGHTS_0 hold four joints per vertex
BODY_COLOR = (0.78, 0.62, 0.50, 1.0)


class _Blob:
    """The GLB binary chunk, built one buffer view at a time (4-byte aligned)."""

    def __init__(self, gltf):
        self.gltf, self.data = gltf, bytearray()

    def view(self, array: np.ndarray, target: int | None = None) -> int:
        import pygltflib as g

        raw = np.ascontiguousarray(array).tobytes()
        self.data += b"\0" * (-len(self.data) % 4)
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw),
                                                  target=target))
        self.data += raw
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False,
                 view: int | None = None, byte_offset: int = 0) -> int:
        """Add an accessor for ``array`` ((n,) or (n, k)), in a new view unless ``view`` is given."""
        import pygltflib as g

        components = {np.dtype(np.float32): g.FLOAT, np.dtype(np.uint32): g.UNSIGNED_INT,
                      np.dtype(np.uint16): g.UNSIGNED_SHORT, np.dtype(np.uint8): g.UNSIGNED_BYTE}
        if view is None:
            view = self.view(array, target)
        flat = array.reshape(len(array), -1)
        kw = {}
        if bounds:
            kw = dict(min=flat.min(0).tolist(), max=flat.max(0).tolist())
        self.gltf.accessors.append(g.Accessor(bufferView=view, byteOffset=byte_offset,
                                              componentType=components[array.dtype], count=len(array),
                                              type=kind, **kw))
        return len(self.gltf.accessors) - 1


def top_weights(weights: np.ndarray, k: int = N_INFLUENCES) -> tuple[np.ndarray, np.ndarray]:
    """(V, J) skin weights → joint indices (V, k) uint8 and weights (V, k) float32 summing to 1,
    largest first."""
    w = np.asarray(weights, np.float64)
    idx = np.argsort(-w, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(w, idx, 1).clip(min=0)
    top /= top.sum(1, keepdims=True)
    idx = np.where(top > 0, idx, 0)
    return idx.astype(np.uint8), top.astype(np.float32)


def continuous_quaternions(quat: np.ndarray) -> np.ndarray:
    """(T, ..., 4) quaternions → signs flipped so consecutive keys are on the same hemisphere."""
    q = np.array(quat, copy=True)
    for t in range(1, len(q)):
        flip = (q[t] * q[t - 1]).sum(-1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return q


def write_glb(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, weights: np.ndarray,
              rest_joints: np.ndarray, local_quaternions: np.ndarray, root_positions: np.ndarray,
              fps: float = FPS, name: str = "dance", copyright: str | None = None,
              extras: dict | None = None) -> Path:
    """Write the skinned body and its animation.

    vertices: (V, 3) rest mesh, metres; faces: (F, 3); weights: (V, 55) skin weights;
    rest_joints: (55, 3) metres; local_quaternions: (T, 55, 4) local joint rotations (w, x, y, z);
    root_positions: (T, 3) pelvis world positions, metres. Returns the path.
    """
    import pygltflib as g
    import trimesh

    from atomic import atomic_write

    n_joints = len(PARENTS)
    rest = np.asarray(rest_joints, np.float64)
    gltf = g.GLTF2(asset=g.Asset(generator="dance export (pygltflib)", copyright=copyright), scene=0)
    blob = _Blob(gltf)

    # Mesh
    v = np.asarray(vertices, np.float32)
    normals = trimesh.Trimesh(v, faces, process=False).vertex_normals.astype(np.float32)
    joint_idx, joint_w = top_weights(weights)
    attributes = g.Attributes(
        POSITION=blob.accessor(v, g.VEC3, g.ARRAY_BUFFER, bounds=True),
        NORMAL=blob.accessor(normals, g.VEC3, g.ARRAY_BUFFER),
        JOINTS_0=blob.accessor(joint_idx, g.VEC4, g.ARRAY_BUFFER),
        WEIGHTS_0=blob.accessor(joint_w, g.VEC4, g.ARRAY_BUFFER))
    indices = blob.accessor(np.asarray(faces, np.uint32).reshape(-1), g.SCALAR, g.ELEMENT_ARRAY_BUFFER)
    gltf.materials.append(g.Material(name="skin", pbrMetallicRoughness=g.PbrMetallicRoughness(
        baseColorFactor=list(BODY_COLOR), metallicFactor=0.0, roughnessFactor=0.7)))
    gltf.meshes.append(g.Mesh(name="body", primitives=[g.Primitive(attributes=attributes, indices=indices,
                                                                  material=0, mode=g.TRIANGLES)]))

    # Joint hierarchy and skin
    for j in range(n_joints):
        offset = rest[j] if PARENTS[j] < 0 else rest[j] - rest[PARENTS[j]]
        children = [c for c in range(n_joints) if PARENTS[c] == j]
        gltf.nodes.append(g.Node(name=JOINT_NAMES[j], translation=offset.tolist(), children=children or None))
    gltf.nodes.append(g.Node(name="body", mesh=0, skin=0))
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (n_joints, 1, 1))
    inverse_bind[:, :3, 3] = -rest
    # glTF matrices are column-major: store each matrix transposed.
    ibm = blob.accessor(inverse_bind.transpose(0, 2, 1).reshape(n_joints, 16), g.MAT4)
    gltf.skins.append(g.Skin(name="body", joints=list(range(n_joints)), inverseBindMatrices=ibm, skeleton=0))
    gltf.scenes.append(g.Scene(nodes=[0, n_joints]))

    # Animation
    n = len(local_quaternions)
    times = (np.arange(n) / fps).astype(np.float32)
    time_acc = blob.accessor(times, g.SCALAR, bounds=True)
    q = continuous_quaternions(np.asarray(local_quaternions, np.float64))[..., [1, 2, 3, 0]]   # → x y z w
    q = q.transpose(1, 0, 2).astype(np.float32)                                              # (55, T, 4)
    rot_view = blob.view(q)
    anim = g.Animation(name=name)
    for j in range(n_joints):
        out = blob.accessor(q[j], g.VEC4, view=rot_view, byte_offset=j * q[j].nbytes)
        anim.samplers.append(g.AnimationSampler(input=time_acc, output=out, interpolation=g.ANIM_LINEAR))
        anim.channels.append(g.AnimationChannel(sampler=j, target=g.AnimationChannelTarget(node=j, path="rotation")))
    root = blob.accessor(np.asarray(root_positions, np.float32), g.VEC3)
    anim.samplers.append(g.AnimationSampler(input=time_acc, output=root, interpolation=g.ANIM_LINEAR))
    anim.channels.append(g.AnimationChannel(sampler=n_joints, target=g.AnimationChannelTarget(node=0, path="translation")))
    gltf.animations.append(anim)
    if extras:
        gltf.extras = dict(extras)

    blob.data += b"\0" * (-len(blob.data) % 4)
    gltf.buffers.append(g.Buffer(byteLength=len(blob.data)))
    gltf.set_binary_blob(bytes(blob.data))
    return atomic_write(Path(path), lambda f: f.write(b"".join(gltf.save_to_bytes())))
