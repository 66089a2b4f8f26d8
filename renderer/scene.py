"""What the viewer sees: a floor, lights, and a camera that follows the dancer.

Geometry is y up, metres. The camera looks at the dancer from the front (+z) and a little above,
following the pelvis over the floor with a Gaussian-smoothed path (non-causal, so it neither lags
nor jitters). Two painters share that camera: :class:`MeshPainter` (pyrender, the full body) and
:class:`SkeletonPainter` (a stick figure drawn with Pillow, for fast previews).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from body.skeleton import FOOT_JOINTS, JOINT_NAMES, PARENTS

WIDTH = HEIGHT = 1200
YFOV = np.deg2rad(50.0)
CAMERA_OFFSET = np.array([0.0, 0.55, 3.6])  # from the followed point, which sits at pelvis height
LOOK_HEIGHT = 0.95                              # metres above the floor the camera aims at
FOLLOW_SIGMA_S = 0.6                            # smoothing of the followed path, seconds
BODY_COLOR = (0.78, 0.62, 0.50, 1.0)
FLOOR_SIZE, FLOOR_TILE = 12.0, 0.5


def floor_height(joints: np.ndarray, foot_joint_height: np.ndarray) -> float:
    """Floor y for a clip: the soles' low level over time. joints: (T, 55, 3)."""
    soles = joints[:, list(FOOT_JOINTS), 1] - foot_joint_height[None]
    per_frame = soles.min(axis=1)
    return float(np.percentile(per_frame, 5))


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """4×4 camera-to-world pose (OpenGL convention: the camera looks along its −z)."""
    f = target - eye
    f = f / np.linalg.norm(f)
    r = np.cross(f, up)
    r = r / np.linalg.norm(r)
    u = np.cross(r, f)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = r, u, -f, eye
    return pose


def camera_path(pelvis: np.ndarray, fps: float = 30) -> np.ndarray:
    """(T, 3) pelvis positions (floor at y = 0) → (T, 4, 4) camera poses."""
    follow = pelvis.astype(np.float64).copy()
    if len(follow) > 1:
        follow[:, [0, 2]] = gaussian_filter1d(follow[:, [0, 2]], FOLLOW_SIGMA_S * fps, axis=0, mode="nearest")
    target = np.stack([follow[:, 0], np.full(len(follow), LOOK_HEIGHT), follow[:, 2]], axis=1)
    return np.stack([look_at(t + CAMERA_OFFSET, t) for t in target])


def projection_matrix(yfov: float = YFOV, aspect: float = WIDTH / HEIGHT, near=0.05, far=100.0) -> np.ndarray:
    f = 1.0 / np.tan(yfov / 2)
    return np.array([[f / aspect, 0, 0, 0], [0, f, 0, 0],
                     [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)], [0, 0, -1, 0]])


def project(points: np.ndarray, cam_pose: np.ndarray, width=WIDTH, height=HEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) world points → (N, 2) pixel coordinates and (N,) depth in front of the camera."""
    world_to_cam = np.linalg.inv(cam_pose)
    p = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    clip = np.c_[p, np.ones(len(p))] @ projection_matrix(aspect=width / height).T
    ndc = clip[:, :2] / clip[:, 3:4]
    px = np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], axis=1)
    return px, -p[:, 2]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit normals, area-weighted over adjacent faces."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _checker_texture(pyrender, tiles: int):
    cell = 8
    ij = (np.indices((tiles * cell, tiles * cell)) // cell).sum(0) % 2
    img = np.where(ij[..., None] == 1, 70, 48).astype(np.uint8).repeat(3, axis=2)
    return pyrender.Texture(source=img, source_channels="RGB",
                            sampler=pyrender.Sampler(magFilter=9728, minFilter=9728))  # GL_NEAREST


@dataclass
class MeshPainter:
    """Renders one body mesh per frame with pyrender on a checkered floor."""

    faces: np.ndarray
    platform: str | None = None
    width: int = WIDTH
    height: int = HEIGHT

    def __post_init__(self):
        from renderer.backend import import_pyrender

        self.pr = pr = import_pyrender(self.platform)
        self.renderer = pr.OffscreenRenderer(self.width, self.height)
        self.scene = pr.Scene(bg_color=(0, 0, 0, 1), ambient_light=(0.25, 0.25, 0.25))
        half = FLOOR_SIZE / 2
        pos = np.array([[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]], np.float32)
        uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
        floor_mat = pr.MetallicRoughnessMaterial(baseColorTexture=_checker_texture(pr, int(FLOOR_SIZE / FLOOR_TILE)),
                                                 metallicFactor=0.0, roughnessFactor=1.0)
        floor = pr.Primitive(positions=pos, normals=np.tile([0, 1, 0], (4, 1)).astype(np.float32),
                             texcoord_0=uv, indices=np.array([[0, 2, 1], [0, 3, 2]], np.uint32), material=floor_mat)
        self.floor_node = self.scene.add(pr.Mesh([floor]))
        self.body_mat = pr.MetallicRoughnessMaterial(baseColorFactor=BODY_COLOR, metallicFactor=0.0,
                                                     roughnessFactor=0.6)
        self.camera_node = self.scene.add(pr.PerspectiveCamera(yfov=YFOV, aspectRatio=self.width / self.height))
        self.key_light = self.scene.add(pr.DirectionalLight(intensity=3.0),
                                        pose=look_at(np.array([1.5, 4.0, 3.0]), np.zeros(3)))
        self.fill_light = self.scene.add(pr.DirectionalLight(intensity=1.2),
                                         pose=look_at(np.array([-3.0, 2.0, 1.0]), np.zeros(3)))
        self.body_node = None

    def paint(self, vertices: np.ndarray, cam_pose: np.ndarray, follow_xz: np.ndarray | None = None) -> np.ndarray:
        """vertices (V, 3) with the floor at y = 0 → (H, W, 3) uint8."""
        pr = self.pr
        prim = pr.Primitive(positions=vertices, normals=vertex_normals(vertices, self.faces),
                            indices=self.faces, material=self.body_mat)
        if self.body_node is not None:
            self.scene.remove_node(self.body_node)
        self.body_node = self.scene.add(pr.Mesh([prim]))
        self.scene.set_pose(self.camera_node, cam_pose)
        if follow_xz is not None:  # keep the floor (and its tiles) centred under the dancer
            snap = np.round(follow_xz / (2 * FLOOR_TILE)) * 2 * FLOOR_TILE
            pose = np.eye(4)
            pose[[0, 2], 3] = snap
            self.scene.set_pose(self.floor_node, pose)
        color, _ = self.renderer.render(self.scene, flags=pr.RenderFlags.NONE)
        return color

    def close(self):
        self.renderer.delete()


@dataclass
class SkeletonPainter:
    """Draws joints and bones as lines (no OpenGL): a quick preview of the motion."""

    width: int = WIDTH
    height: int = HEIGHT

    def paint(self, joints: np.ndarray, cam_pose: np.ndarray, follow_xz: np.ndarray | None = None) -> np.ndarray:
        """joints (55, 3) with the floor at y = 0 → (H, W, 3) uint8."""
        from PIL import Image, ImageDraw

        img = Image.new("RGB", (self.width, self.height))
        draw = ImageDraw.Draw(img)
        cx, cz = (0.0, 0.0) if follow_xz is None else np.round(follow_xz / FLOOR_TILE) * FLOOR_TILE
        grid = np.arange(-6, 7) * FLOOR_TILE
        for g in grid:  # floor grid lines, drawn as segments in front of the camera
            for a, b in (((cx + g, 0, cz - 3), (cx + g, 0, cz + 3)), ((cx - 3, 0, cz + g), (cx + 3, 0, cz + g))):
                px, depth = project(np.array([a, b], float), cam_pose, self.width, self.height)
                if (depth > 0.1).all():
                    draw.line([tuple(px[0]), tuple(px[1])], fill=(60, 60, 60), width=2)
        px, depth = project(joints.astype(np.float64), cam_pose, self.width, self.height)
        for j, p in enumerate(PARENTS):
            if p >= 0 and depth[j] > 0.1 and depth[p] > 0.1:
                left = "left" in JOINT_NAMES[j]
                color = (90, 170, 255) if left else (255, 150, 90) if "right" in JOINT_NAMES[j] else (230, 230, 230)
                draw.line([tuple(px[p]), tuple(px[j])], fill=color, width=6 if j < 22 else 2)
        return np.asarray(img)

    def close(self):
        pass

