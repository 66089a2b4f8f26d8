"""What the viewer sees: a floor, lights, and a camera that follows the dancer.

Geometry is y up, metres. The camera looks at the dancer from the front (+z) and a little above,
following the pelvis over the floor with a Gaussian-smoothed path (non-causal, so it neither lags
nor jitters). :class:`FloorPainter` paints the floor; two painters draw the dancer over it with the same camera:
:class:`MeshPainter` (pyrender, the full body) and :class:`SkeletonPainter` (a stick figure drawn
with Pillow, for fast previews).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from body.skeleton import JOINT_NAMES, PARENTS

WIDTH = HEIGHT = 1200
SHADER_DIR = Path(__file__).resolve().parent / "shaders"   # the body's GLSL (mesh.vert, mesh.frag)
YFOV = np.deg2rad(50.0)
CAMERA_OFFSET = np.array([0.0, 0.55, 3.6])  # from the followed point, which sits at pelvis height
LOOK_HEIGHT = 0.95                              # metres above the floor the camera aims at
FOLLOW_SIGMA_S = 0.6                            # smoothing of the followed path, seconds
BODY_COLOR = (0.78, 0.62, 0.50, 1.0)
FLOOR_TILE = 0.5                                # metres per checker square
FLOOR_COLORS = (72, 52)                         # grey levels of the two squares
FLOOR_FADE = (5.0, 9.0)                         # metres from the camera where the floor fades out
SHADOW_SIGMA, SHADOW_STRENGTH = 0.28, 0.6       # soft round shadow under the pelvis


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


def follow_path(pelvis: np.ndarray, fps: float = 30) -> np.ndarray:
    """(T, 3) pelvis positions → (T, 2) smoothed floor point (x, z) the camera follows."""
    xz = pelvis[:, [0, 2]].astype(np.float64)
    if len(xz) > 1:
        xz = gaussian_filter1d(xz, FOLLOW_SIGMA_S * fps, axis=0, mode="nearest")
    return xz


def camera_pose(follow_xz: np.ndarray) -> np.ndarray:
    """4×4 pose of the camera following the floor point (x, z): fixed orientation and height."""
    target = np.array([follow_xz[0], LOOK_HEIGHT, follow_xz[1]])
    return look_at(target + CAMERA_OFFSET, target)


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


class NormalComputer:
    """Area-weighted vertex normals of a fixed triangle topology, via a precomputed sparse sum."""

    def __init__(self, faces: np.ndarray, n_vertices: int):
        from scipy.sparse import csr_matrix

        faces = np.asarray(faces)
        rows = faces.T.ravel()
        cols = np.tile(np.arange(len(faces)), 3)
        self.faces = faces
        self.incidence = csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_vertices, len(faces)))

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        """(V, 3) → (V, 3) unit normals."""
        tri = vertices[self.faces]
        n = self.incidence @ np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        return (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class FloorPainter:
    """The checkered floor, painted analytically instead of by OpenGL.

    The camera keeps one orientation and height and only slides over the floor, so the floor point
    seen through each pixel is the followed point plus a fixed per-pixel offset. Precomputing those
    offsets makes a floor frame a few array operations — far cheaper than shading a screen-filling
    quad in software OpenGL, which costs more than the body itself. A soft round shadow sits under
    the pelvis, and the floor fades into the black background with distance.
    """

    def __init__(self, width: int = WIDTH, height: int = HEIGHT):
        pose = camera_pose(np.zeros(2))
        f = 1.0 / np.tan(YFOV / 2)
        xs = ((np.arange(width) + 0.5) / width * 2 - 1) * (width / height) / f
        ys = (1 - (np.arange(height) + 0.5) / height * 2) / f
        eye_height = CAMERA_OFFSET[1] + LOOK_HEIGHT
        self.shape = (height, width)
        # Only rows whose rays can hit the floor are stored.
        dirs_y = pose[1, 0] * xs[None, :] + pose[1, 1] * ys[:, None] - pose[1, 2]
        rows = np.nonzero((dirs_y < -1e-3).any(axis=1))[0]
        self.row0 = int(rows[0]) if len(rows) else height
        d = lambda k: pose[k, 0] * xs[None, :] + pose[k, 1] * ys[self.row0:, None] - pose[k, 2]
        dy = d(1)
        hit = dy < -1e-3
        dist = np.where(hit, eye_height / np.where(hit, -dy, 1), np.inf)
        self.off_x = (CAMERA_OFFSET[0] + dist * d(0)).astype(np.float32)
        self.off_z = (CAMERA_OFFSET[2] + dist * d(2)).astype(np.float32)
        ground = np.hypot(self.off_x - CAMERA_OFFSET[0], self.off_z - CAMERA_OFFSET[2])
        self.fade = np.clip((FLOOR_FADE[1] - ground) / (FLOOR_FADE[1] - FLOOR_FADE[0]), 0, 1).astype(np.float32)
        self.fade[~np.isfinite(self.fade)] = 0
        # Tile coordinates of each pixel for a camera at the origin; the parity picks the grey.
        finite = np.isfinite(self.off_x)
        self.tile_x = np.where(finite, self.off_x / FLOOR_TILE, 0).astype(np.float32)
        self.tile_z = np.where(finite, self.off_z / FLOOR_TILE, 0).astype(np.float32)
        self.off_x[~finite] = 1e6
        self.off_z[~finite] = 1e6
        self.grey_even = (FLOOR_COLORS[1] * self.fade).astype(np.float32)
        self.grey_odd = (FLOOR_COLORS[0] * self.fade).astype(np.float32)

    def paint(self, follow_xz: np.ndarray, shadow_xz: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 floor image for :func:`camera_pose` (follow_xz), shadow centred at shadow_xz."""
        tx = np.floor(self.tile_x + np.float32(follow_xz[0] / FLOOR_TILE)).astype(np.int32)
        tz = np.floor(self.tile_z + np.float32(follow_xz[1] / FLOOR_TILE)).astype(np.int32)
        tx += tz
        tx &= 1
        shade = np.where(tx == 1, self.grey_odd, self.grey_even)  # (rows, W): faded with distance
        if shadow_xz is not None:  # only inside the shadow's reach on screen
            r0, r1, c0, c1 = self._shadow_box(follow_xz, shadow_xz)
            if r1 > r0 and c1 > c0:
                dx = self.off_x[r0:r1, c0:c1] + np.float32(follow_xz[0] - shadow_xz[0])
                dz = self.off_z[r0:r1, c0:c1] + np.float32(follow_xz[1] - shadow_xz[1])
                shade[r0:r1, c0:c1] *= 1 - SHADOW_STRENGTH * np.exp((dx * dx + dz * dz) * np.float32(-0.5 / SHADOW_SIGMA ** 2))
        img = np.zeros((*self.shape, 3), np.uint8)
        grey, floor = shade.astype(np.uint8), img[self.row0:]
        for channel in range(3):   # one plain copy each: 2× faster than broadcasting grey[..., None] into RGB
            floor[..., channel] = grey
        return img

    def _shadow_box(self, follow_xz, shadow_xz):
        """Rows and columns (relative to row0) of the floor image within 3σ of the shadow centre."""
        rel = np.asarray(shadow_xz, np.float32) - np.asarray(follow_xz, np.float32)
        near = (np.abs(self.off_x[:, ::8] - rel[0]) < 3 * SHADOW_SIGMA) & (np.abs(self.off_z[:, ::8] - rel[1]) < 3 * SHADOW_SIGMA)
        rows, cols = np.nonzero(near)
        if len(rows) == 0:
            return 0, 0, 0, 0
        return rows.min(), rows.max() + 1, max(cols.min() * 8 - 8, 0), cols.max() * 8 + 9


class MeshPainter:
    """Renders the body mesh with pyrender (black background) over the analytic floor."""

    def __init__(self, faces: np.ndarray, platform: str | None = None, width: int = WIDTH, height: int = HEIGHT):
        from renderer.backend import import_pyrender

        self.faces = np.asarray(faces)
        self.pr = pr = import_pyrender(platform)
        self.renderer = pr.OffscreenRenderer(width, height)
        # Our own, cheaper shaders for the body (renderer/shaders: pyrender's diffuse and ambient
        # shading without the faint specular highlight): the draw takes half the time on llvmpipe,
        # the image differs by 2/255 on average.
        from pyrender.shader_program import ShaderProgramCache

        self.renderer._renderer._program_cache = ShaderProgramCache(shader_dir=str(SHADER_DIR))
        self.size = (width, height)
        self.scene = pr.Scene(bg_color=(0, 0, 0, 0), ambient_light=(0.25, 0.25, 0.25))
        self.body_mat = pr.MetallicRoughnessMaterial(baseColorFactor=BODY_COLOR, metallicFactor=0.0,
                                                     roughnessFactor=0.6)
        self.camera_node = self.scene.add(pr.PerspectiveCamera(yfov=YFOV, aspectRatio=width / height))
        self.scene.add(pr.DirectionalLight(intensity=3.0), pose=look_at(np.array([1.5, 4.0, 3.0]), np.zeros(3)))
        self.scene.add(pr.DirectionalLight(intensity=1.2), pose=look_at(np.array([-3.0, 2.0, 1.0]), np.zeros(3)))
        self.normals = NormalComputer(self.faces, int(self.faces.max()) + 1)
        self.body_node = None

    def paint(self, vertices: np.ndarray, cam_pose: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Draw the body (vertices (V, 3), floor at y = 0) over ``image`` (H, W, 3) uint8, in place."""
        pr = self.pr
        prim = pr.Primitive(positions=vertices, normals=self.normals(vertices),
                            indices=self.faces, material=self.body_mat)
        if self.body_node is not None:
            self.scene.remove_node(self.body_node)
        self.body_node = self.scene.add(pr.Mesh([prim]))
        self.scene.set_pose(self.camera_node, cam_pose)
        color = self._render_color()
        # Composite inside the body's screen box only; the background is pure black and the lit
        # body never is.
        px, _ = project(vertices[::7].astype(np.float64), cam_pose, *self.size)
        c0, r0 = np.clip(np.floor(px.min(axis=0)).astype(int) - 8, 0, None)
        c1, r1 = np.ceil(px.max(axis=0)).astype(int) + 8
        box = color[r0:r1, c0:c1]
        body = (box[..., 0] | box[..., 1] | box[..., 2]) != 0
        np.copyto(image[r0:r1, c0:c1], box, where=body[..., None])
        return image

    def _render_color(self) -> np.ndarray:
        """Colour only. pyrender's public render() also reads back and linearises the depth
        buffer on OSMesa (~10 ms a frame at 1200²), which compositing over black does not need."""
        r = self.renderer
        if r._platform.supports_framebuffers():
            return r.render(self.scene, flags=self.pr.RenderFlags.NONE)[0]
        r._platform.make_current()
        r._renderer.viewport_width, r._renderer.viewport_height = r.viewport_width, r.viewport_height
        r._renderer.render(self.scene, self.pr.RenderFlags.NONE)
        return r._renderer.read_color_buf()

    def close(self):
        self.renderer.delete()


class SkeletonPainter:
    """Draws bones as lines with Pillow (no OpenGL) over the floor: a quick preview of the motion."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT):
        self.width, self.height = width, height

    def paint(self, joints: np.ndarray, cam_pose: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Draw the skeleton (joints (55, 3), floor at y = 0) over ``image`` (H, W, 3) uint8."""
        from PIL import Image, ImageDraw

        img = Image.fromarray(image)
        draw = ImageDraw.Draw(img)
        px, depth = project(joints.astype(np.float64), cam_pose, self.width, self.height)
        for j, p in enumerate(PARENTS):
            if p >= 0 and depth[j] > 0.1 and depth[p] > 0.1:
                name = JOINT_NAMES[j]
                color = (90, 170, 255) if name.startswith("left") else \
                    (255, 150, 90) if name.startswith("right") else (230, 230, 230)
                draw.line([tuple(px[p]), tuple(px[j])], fill=color, width=6 if j < 22 else 2)
        return np.asarray(img)

    def close(self):
        pass
