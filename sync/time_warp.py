"""Time warps that move kinematic beats onto music beats: beat alignment by dynamic programming, a
steady piecewise-linear time map, motion resampling, and the beat synchronisation of generated dances.

Two users:

- ``dataset.open_corpus`` fits captured CMU clips onto the annotated beats of a music track (wide
  slope limits, the clip may land anywhere in the track); its docstring explains the method.
- :func:`sync_to_beats` nudges a generated dance onto its song's beats after sampling (``pipeline``,
  ``Settings.beat_sync``): the dance's kinematic beats are matched to the beats librosa found in
  the song's features (``sync.beats.music_beats_from_features``), with slopes within
  ``SYNC_LIMITS`` and no beat moved more than ``SYNC_MAX_OFFSET`` frames, so the dance keeps its
  length and its place in the song (a motion frame stays within half a second of its music frame).
  Only the timing changes: poses are resampled (slerp), never invented, so a planted foot stays
  planted and speeds change by at most the slope limits. Music or motion without beats, or with
  no beat pair within reach, is returned unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from body import rotations
from body.skeleton import MOTION_DIM, MOTION_DIM_315, N_MOTION_JOINTS
from motion.edit import ease_away_from, fixed_frames
from motion.layout import MOTION_315, MOTION_319
from sync import beats as kb

SLOPE_LIMITS = (0.75, 1.33)     # music frames per motion frame allowed in any warp segment
MAX_SKIP = 3                    # motion beats a warp segment may pass over without matching
DISTORTION_COST = 2.0           # score cost per anchor segment, per unit of |ln slope|
STEADY_RADIUS = 10.0            # frames on each side of a beat where the time map keeps one slope
SLOPE_GRID = 41                 # candidate slopes at a beat (geometric grid over the limits)
BLEND = 4.0                     # frames: half-width of the speed ramps between slopes
SYNC_LIMITS = (0.8, 1.25)       # beat sync of generated dances: at most 25 % faster or slower
SYNC_MAX_OFFSET = 15.0          # frames: how far beat sync may move a beat (half a second)
KEEP_EASE = 2.5                 # × the largest shift: frames over which the shift eases in beside kept frames
NEAR_HORIZON = 600.0            # frames: the longest stretch without a matched beat a near-identity chain bridges

@dataclass
class Alignment:
    """A chain of matched beats: src (K,) motion frames ↦ dst (K,) music frames; score as in
    :func:`align_beats`."""

    src: np.ndarray
    dst: np.ndarray
    score: float

    @property
    def slopes(self) -> np.ndarray:
        return np.diff(self.dst) / np.diff(self.src) if len(self.src) > 1 else np.ones(1)


def align_beats(src_beats, dst_beats, limits=SLOPE_LIMITS, max_skip: int = MAX_SKIP,
                cost: float = DISTORTION_COST) -> Alignment | None:
    """Best monotonic chain of (motion beat ↦ music beat) anchors by dynamic programming.

    src_beats: (N,) motion beat frames; dst_beats: (M,) music beat frames (both increasing).
    Consecutive anchors (i', j') → (i, j) need i − i' ≤ max_skip + 1 and a slope
    (dst[j] − dst[j']) / (src[i] − src[i']) within ``limits``. Score = number of anchors −
    ``cost`` · Σ|ln slope|. Returns None when there are no beats.
    """
    s = np.asarray(src_beats, np.float64)
    g = np.asarray(dst_beats, np.float64)
    n, m = len(s), len(g)
    if n == 0 or m == 0:
        return None
    lo, hi = limits
    score = np.ones((n, m))                 # every anchor can start a chain
    prev_i = np.full((n, m), -1)
    prev_j = np.full((n, m), -1)
    cols = np.arange(m)
    for i in range(1, n):
        for ip in range(max(0, i - max_skip - 1), i):
            ds = s[i] - s[ip]
            for dj in range(1, m):
                dg = g[dj:] - g[:-dj]                 # dst[j] − dst[j − dj] for j = dj … m−1
                if dg.min() > hi * ds:                # only grows with dj
                    break
                slope = dg / ds
                ok = (slope >= lo) & (slope <= hi)
                if not ok.any():
                    continue
                cand = np.where(ok, score[ip, :-dj] + 1.0 - cost * np.abs(np.log(slope)), -np.inf)
                better = cand > score[i, dj:]
                if better.any():
                    j = cols[dj:][better]
                    score[i, j] = cand[better]
                    prev_i[i, j], prev_j[i, j] = ip, j - dj
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    best = float(score[i, j])
    chain = []
    while i >= 0:
        chain.append((i, j))
        i, j = prev_i[i, j], prev_j[i, j]
    chain.reverse()
    return Alignment(s[[c[0] for c in chain]], g[[c[1] for c in chain]], best)


def align_beats_near(src_beats, dst_beats, max_offset: float, limits=SLOPE_LIMITS,
                     cost: float = DISTORTION_COST, horizon: float = NEAR_HORIZON) -> Alignment | None:
    """Best monotonic chain of anchors (motion beat i ↦ music beat j) that stay near the identity:
    |dst[j] − src[i]| ≤ ``max_offset`` frames for every anchor.

    Unlike :func:`align_beats` a chain may pass over any number of unmatched beats on either side
    (consecutive anchors at most ``horizon`` frames apart), so one chain spans a whole song however
    many of its beats find no partner. Consecutive anchors need a slope within ``limits``; score =
    anchors − ``cost`` · Σ|ln slope|. Returns None when no beat pair is within reach.
    """
    s = np.asarray(src_beats, np.float64)
    g = np.asarray(dst_beats, np.float64)
    if len(s) == 0 or len(g) == 0:
        return None
    ii, jj = np.nonzero(np.abs(g[None, :] - s[:, None]) <= max_offset)   # candidate anchors, by i then j
    if len(ii) == 0:
        return None
    x, y = s[ii], g[jj]
    lo, hi = limits
    score = np.ones(len(ii))
    back = np.full(len(ii), -1)
    first = 0                                  # earliest candidate still within the horizon
    for k in range(1, len(ii)):
        while x[k] - x[first] > horizon:
            first += 1
        prev = slice(first, int(np.searchsorted(ii, ii[k])))     # candidates of earlier motion beats
        if prev.stop <= prev.start:
            continue
        dx, dy = x[k] - x[prev], y[k] - y[prev]
        ok = (jj[prev] < jj[k]) & (dy >= lo * dx) & (dy <= hi * dx)
        if not ok.any():
            continue
        cand = np.where(ok, score[prev] + 1.0 - cost * np.abs(np.log(np.where(ok, dy / dx, 1.0))), -np.inf)
        best = int(np.argmax(cand))
        if cand[best] > score[k]:
            score[k], back[k] = cand[best], prev.start + best
    k = int(np.argmax(score))
    best_score = float(score[k])
    chain = []
    while k >= 0:
        chain.append(k)
        k = back[k]
    chain.reverse()
    return Alignment(x[chain], y[chain], best_score)


@dataclass
class TimeWarp:
    """Increasing map from motion frames to music frames: the polyline through knots (x, y),
    extended past the first and last knot with the end segments' slopes, with the corners at the
    knots flagged in ``round`` rounded off by a parabola over ±``blend`` frames (the slope ramps
    linearly from one segment's to the next; outside the ramp the map is the polyline, so every
    other knot stays exact). ``n_src``: motion length in frames."""

    x: np.ndarray
    y: np.ndarray
    n_src: int
    round: np.ndarray | None = None
    blend: float = 0.0

    def _ends(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = np.asarray(self.x, np.float64), np.asarray(self.y, np.float64)
        first = (y[1] - y[0]) / (x[1] - x[0]) if len(x) > 1 else 1.0
        last = (y[-1] - y[-2]) / (x[-1] - x[-2]) if len(x) > 1 else 1.0
        x0, x1 = min(0.0, x[0] - 1), max(self.n_src - 1.0, x[-1] + 1)
        return (np.concatenate([[x0], x, [x1]]),
                np.concatenate([[y[0] - first * (x[0] - x0)], y, [y[-1] + last * (x1 - x[-1])]]))

    def _corners(self):
        """(position, half-width, slope change) of every rounded corner."""
        if self.round is None or self.blend <= 0 or len(self.x) < 3:
            return []
        x, slopes = np.asarray(self.x, np.float64), self.slopes
        out = []
        for k in np.nonzero(self.round)[0]:
            if 0 < k < len(x) - 1:
                h = min(self.blend, (x[k] - x[k - 1]) / 2, (x[k + 1] - x[k]) / 2)
                if h > 0:
                    out.append((x[k], h, slopes[k] - slopes[k - 1]))
        return out

    def forward(self, src_frames) -> np.ndarray:
        """Motion frames → music frames."""
        xs, ys = self._ends()
        u = np.asarray(src_frames, np.float64)
        out = np.interp(u, xs, ys)
        for c, h, change in self._corners():
            near = np.clip(h - np.abs(u - c), 0, None)
            out = out + change * near ** 2 / (4 * h)
        return out

    def inverse(self, dst_frames) -> np.ndarray:
        """Music frames → motion frames (clipped to the clip)."""
        xs, _ = self._ends()
        if not self._corners():
            _, ys = self._ends()
            return np.clip(np.interp(dst_frames, ys, xs), 0, self.n_src - 1)
        dense = np.linspace(xs[0], xs[-1], int((xs[-1] - xs[0]) * 20) + 2)
        return np.clip(np.interp(dst_frames, self.forward(dense), dense), 0, self.n_src - 1)

    @property
    def slopes(self) -> np.ndarray:
        """Slope of every polyline segment between knots (music frames per motion frame); the
        rounded map's slope always lies between two neighbouring ones."""
        return np.diff(self.y) / np.diff(self.x) if len(self.x) > 1 else np.ones(1)

    @property
    def span(self) -> tuple[float, float]:
        """Music frames of the first and last motion frame."""
        a, b = self.forward([0, self.n_src - 1])
        return float(a), float(b)


def steady_time_warp(src, dst, n_src: int, limits=SLOPE_LIMITS, radius: float = STEADY_RADIUS,
                     n_grid: int = SLOPE_GRID, blend: float = BLEND) -> TimeWarp:
    """A piecewise-linear time map through the anchors (src[k] ↦ dst[k]) whose slope does not
    change within ``radius`` frames of a beat.

    Why: kinematic beats are minima of the speed smoothed over ±2σ = ±10 frames. Were the slope to
    change at a beat, the speed before it would be scaled differently from the speed after it and
    the smoothed minimum would move by a frame or two off its music beat. So each anchor k gets
    one slope d_k on [src[k] − r, src[k] + r]; between two anchors the map runs d_k, then a middle
    slope c that makes the segment end on the next anchor, then d_{k+1}. r = min(radius, L/3)
    (L = the segment's length) is halved until c is within the limits (r = 0 is the plain
    polyline through the anchors, always valid because the anchors' own slopes are). The d_k are
    chosen on a geometric grid over the limits by dynamic programming (Viterbi), minimising
    Σ (ln d_k)²/10 + Σ [(ln c − ln d_k)² + (ln d_{k+1} − ln c)²] + 1 per halving of r: small
    speed changes, steady beats. Every slope is within ``limits``. The corners between a beat's
    slope and a middle slope are rounded over ±``blend`` frames (the speed ramps instead of
    jumping mid-movement); the corners at anchors are not, so anchors stay exact.
    """
    s, g = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if len(s) < 2:
        return TimeWarp(s, g, n_src)
    lo, hi = limits
    grid = np.geomspace(lo, hi, n_grid)
    lg = np.log(grid)
    n_seg = len(s) - 1
    # For every segment and pair of grid slopes (d_k, d_k+1): the radius used, middle slope, cost.
    seg_r, seg_c, seg_cost = [], [], []
    for k in range(n_seg):
        length, rise = s[k + 1] - s[k], g[k + 1] - g[k]
        r_best = np.zeros((n_grid, n_grid))
        c_best = np.full((n_grid, n_grid), rise / length)
        penalty = np.full((n_grid, n_grid), 0.0)
        r_try, halvings = min(radius, length / 3), 0
        while r_try >= 1.0:
            c = (rise - r_try * (grid[:, None] + grid[None, :])) / (length - 2 * r_try)
            ok = (c >= lo) & (c <= hi) & (r_best == 0)
            r_best[ok], c_best[ok], penalty[ok] = r_try, c[ok], halvings
            r_try, halvings = r_try / 2, halvings + 1
        penalty[r_best == 0] = halvings + 1
        lc = np.log(c_best)
        kink = np.where(r_best > 0, (lc - lg[:, None]) ** 2 + (lg[None, :] - lc) ** 2, 0.0)
        seg_r.append(r_best)
        seg_c.append(c_best)
        seg_cost.append(kink + penalty)
    cost = lg ** 2 / 10
    back = np.zeros((len(s), n_grid), int)
    for k in range(n_seg):
        total = cost[:, None] + seg_cost[k]
        back[k + 1] = total.argmin(axis=0)
        cost = total.min(axis=0) + lg ** 2 / 10
    choice = np.zeros(len(s), int)
    choice[-1] = int(cost.argmin())
    for k in range(n_seg, 0, -1):
        choice[k - 1] = back[k][choice[k]]
    x, y, mid = [s[0]], [g[0]], [False]
    for k in range(n_seg):
        i, j = choice[k], choice[k + 1]
        r = seg_r[k][i, j]
        if r > 0:
            x += [s[k] + r, s[k + 1] - r]
            y += [g[k] + grid[i] * r, g[k + 1] - grid[j] * r]
            mid += [True, True]
        x.append(s[k + 1])
        y.append(g[k + 1])
        mid.append(False)
    # Knots at the first and last anchor continue with the anchor's own slope (no kink there).
    x = [s[0] - 1.0] + x + [s[-1] + 1.0]
    y = [g[0] - grid[choice[0]]] + y + [g[-1] + grid[choice[-1]]]
    mid = [False] + mid + [False]
    return TimeWarp(np.array(x), np.array(y), n_src, np.array(mid), blend)


def sample_motion(motion: np.ndarray, src_frames: np.ndarray) -> np.ndarray:
    """(T, 315) motion at fractional frames (n,) → (n, 315): slerp rotations, lerp translation."""
    motion = np.asarray(motion, np.float32)
    if motion.ndim != 2 or motion.shape[1] != MOTION_DIM_315:
        raise ValueError(f"motion must be (T, {MOTION_DIM_315}), got {motion.shape}")
    src = np.clip(np.asarray(src_frames, np.float64), 0, len(motion) - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, len(motion) - 1)
    w = src - i0
    trans = motion[i0, MOTION_315.translation] * (1 - w[:, None]) + motion[i1, MOTION_315.translation] * w[:, None]
    rot6d = MOTION_315.rot6d(torch.from_numpy(motion).double())
    q = rotations.matrix_to_quaternion(rotations.rotation_6d_to_matrix(rot6d))
    wt = torch.from_numpy(w)[:, None].expand(-1, N_MOTION_JOINTS)
    qs = rotations.quaternion_slerp(q[torch.from_numpy(i0)], q[torch.from_numpy(i1)], wt)
    out6d = rotations.matrix_to_rotation_6d(rotations.quaternion_to_matrix(qs)).reshape(len(src), -1)
    return np.concatenate([trans, out6d.numpy()], axis=1).astype(np.float32)


@dataclass
class BeatSync:
    """What :func:`sync_to_beats` did: the (T, 319) vector, the motion and music beats it saw, the
    matched pairs (anchors: motion frame → music frame) and the largest time shift in frames."""

    vector: np.ndarray
    motion_beats: np.ndarray
    music_beats: np.ndarray
    anchors: np.ndarray          # (K, 2)
    max_shift: float
    source_frames: np.ndarray | None = None   # (T,) increasing: the input frame each output frame shows

    @property
    def changed(self) -> bool:
        return len(self.anchors) >= 2


def sync_to_beats(vector: np.ndarray, music_beats, rest_joints, limits=SYNC_LIMITS,
                  max_offset: float = SYNC_MAX_OFFSET, keep: np.ndarray | None = None) -> BeatSync:
    """Re-time a (T, 319) dance so its kinematic beats land on ``music_beats`` (frames of the same
    30 fps clock, frame 0 = the dance's first frame); the result has the same T frames.

    The dance's beats (sub-frame speed minima of its 22 body joints posed on ``rest_joints``) are
    matched to the music beats by :func:`align_beats_near` (slopes within ``limits``, anchors at most
    ``max_offset`` frames from the diagonal), a :func:`steady_time_warp` runs through the anchors,
    and the dance is resampled at the warp's inverse: rotations by slerp, translation and contact
    channels linearly. Before the first anchor and after the last the dance is shifted by that
    anchor's offset, not stretched (so the first or last frame may hold for at most ``max_offset``
    frames). Between anchors the shift stays within a few frames of ``max_offset``.
    """
    vector = np.asarray(vector, np.float32)
    if vector.ndim != 2 or vector.shape[1] != MOTION_DIM:
        raise ValueError(f"dance must be (T, {MOTION_DIM}), got {vector.shape}")
    n = len(vector)
    music = np.sort(np.asarray(music_beats, np.float64).ravel())
    music = music[(music >= 0) & (music <= n - 1)]
    beats = kb.motion_beats(kb.body_joints(vector, rest_joints), subframe=True) if n >= 3 else np.zeros(0)
    unchanged = BeatSync(vector, beats, music, np.zeros((0, 2)), 0.0)
    alignment = align_beats_near(beats, music, max_offset, limits=limits)
    if alignment is None or len(alignment.src) < 2:
        return unchanged
    warp = steady_time_warp(alignment.src, alignment.dst, n, limits=limits)
    t = np.arange(n, dtype=np.float64)
    src = warp.inverse(t)
    (s0, s1), (g0, g1) = alignment.src[[0, -1]], alignment.dst[[0, -1]]
    src = np.where(t < g0, t + (s0 - g0), np.where(t > g1, t + (s1 - g1), src))   # edges: shifted, not stretched
    src = np.clip(src, 0, n - 1)
    fixed = fixed_frames(keep)
    if fixed is not None and fixed.any():
        shift = src - t
        ease = ease_away_from(fixed, max(1.0, KEEP_EASE * float(np.abs(shift).max())))
        src = np.maximum.accumulate(np.clip(t + ease * shift, 0, n - 1))   # monotonic by construction too
    contacts = np.stack([np.interp(src, t, c) for c in vector[:, MOTION_319.contacts].T], axis=1)
    out = np.concatenate([contacts, sample_motion(vector[:, MOTION_319.motion], src)], axis=1).astype(np.float32)
    if fixed is not None:
        out[fixed] = vector[fixed]
    anchors = np.stack([alignment.src, alignment.dst], axis=1)
    return BeatSync(out, beats, music, anchors, float(np.abs(src - np.arange(n)).max()), src)
