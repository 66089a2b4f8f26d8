"""Hands that move (issue 22, part 2): the procedural hand layer measured on real songs, and close-ups.

    python benchmarks/bench_hands.py                        # the demo song and five songs of ../shared/data/music
    python benchmarks/bench_hands.py --seconds 30 --images docs/images    # also the close-up images
    python benchmarks/bench_hands.py --sheet docs/images/hand_vocabulary.png --songs ''   # the pose vocabulary only
    python benchmarks/bench_hands.py --songs '' --break_song     # the demo song with 10 s without a steady beat

For each song, the default dance is made without the layer (``--no_hand_motion``: the hands as the network
wrote them, "before") and the layer is then laid on it exactly as ``Settings.hand_motion`` does
(``DanceGenerator.hands_added``, "after"). Printed per song, before → after:

- mean angular speed of the 30 finger joints (rad/s; target 0.3–3);
- the share of beats on which the hands hold a new pose (``sync.hands.pose_changes``: the 30 joints turned
  on average more than 0.1 rad between the poses read 2 frames after a beat and after the beat before;
  read from the motion alone, steady beats only; target: a change every 1–4 beats, so 0.25–1), and the
  beats per change;
- the finger-joint angles against their limits (``body.hand_poses.LIMITS``): the share of frame×joint
  angles inside, and the largest excess in degrees;
- how the layer placed its changes (on beats, on arm motion), and where the song has no steady beat how
  often the hands changed there and how fast the fingers moved.

``--images DIR`` writes DIR/hands_before_after.png: close-ups of one hand at moments of the first song,
before (top row) and after (bottom row), same frames, same camera; and DIR/hands_blend.png: five frames
through one change of that hand into a closed pose. ``--sheet PATH``: every pose of the
vocabulary from the back of the hand and from the palm side (the free body, arms in the rest pose).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import pipeline
from body.hand_poses import LIMITS, POSES, hand_frames, rotations_from_angles
from sync.beats import music_beats_from_features
from sync.hands import SETTLE, finger_angles, finger_speed, network_hands_move, pose_changes

ROOT = Path(__file__).resolve().parent.parent
MUSIC = ROOT.parent / "shared" / "data" / "music"
DEMO_SONG = ROOT / "assets" / "music" / "soldiers_joy_house.mp3"
SONGS = [str(DEMO_SONG)] + [str(MUSIC / name) for name in (
    "d04_o_haupt_voll_blut_und_wunden_lofi.mp3", "d05_the_groves_of_blarney_waltz.mp3",
    "d08_maple_leaf_rag_breakbeat.mp3", "d14_original_techno.mp3", "d16_jeanie_with_the_light_brown_hair_ballad.mp3")]
TILE = 300         # pixels of a close-up
SHEET_TILE = 240   # pixels of a pose on the vocabulary sheet


def song_with_a_break(path: Path, seconds: float = 10.0) -> Path:
    """The demo song with its middle replaced by held chords (no onsets, so no steady beat): 0–10 s of the
    song, 10 s of chords swelling slowly, then the song again from 10 s. A WAV at 15360 Hz."""
    import soundfile as sf

    from audio.music import SAMPLE_RATE, load_audio

    y = load_audio(DEMO_SONG, max_seconds=3 * seconds)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pad = 0.15 * np.sin(2 * np.pi * 220 * t) * (1 + 0.3 * np.sin(2 * np.pi * 0.1 * t)) + 0.08 * np.sin(2 * np.pi * 330 * t)
    fade = np.minimum(1, np.minimum(t, t[::-1]) / 0.05)             # no click at the joins
    sf.write(path, np.concatenate([y[:n], pad * fade, y[n:2 * n]]).astype(np.float32), SAMPLE_RATE)
    return path


def unsteady_report(dance, after) -> str:
    """How the hands changed in the spans without a steady beat (None when the song has none)."""
    if dance.beat_track is None or not dance.beat_track.unsteady_spans():
        return ""
    spans = dance.beat_track.unsteady_spans()
    inside = [c for c in after.hands.changes if any(a * 30 <= c.frame < b * 30 for a, b in spans)]
    frames = np.zeros(len(after.vector), bool)
    for a, b in spans:
        frames[int(a * 30):int(b * 30)] = True
    gaps = np.diff([c.frame for c in inside]) / 30 if len(inside) > 1 else np.zeros(0)
    return (f"  no steady beat in {', '.join(f'{a:.1f}–{b:.1f} s' for a, b in spans)}: {len(inside)} changes there, "
            f"all on arm motion: {all(not c.on_beat for c in inside)}, {gaps.mean() if len(gaps) else 0:.2f} s apart "
            f"on average (min {gaps.min() if len(gaps) else 0:.2f}); finger speed there "
            f"{finger_speed(after.vector, frames):.2f} rad/s")


def measure(vector: np.ndarray, rest: np.ndarray, beats: np.ndarray) -> dict:
    angles = finger_angles(vector, rest)
    inside = (angles >= LIMITS[..., 0] - 1e-4) & (angles <= LIMITS[..., 1] + 1e-4)
    excess = np.maximum(LIMITS[..., 0] - angles, angles - LIMITS[..., 1]).max()
    changed = pose_changes(vector, beats)
    return {"finger_speed": finger_speed(vector), "change_share": float(changed.mean()) if len(changed) else 0.0,
            "inside_limits": float(inside.mean()), "max_excess_deg": float(np.rad2deg(max(excess, 0.0)))}


def steady_beats(dance) -> np.ndarray:
    beats = music_beats_from_features(dance.features)
    if dance.beat_track is None:
        return beats
    return beats[dance.beat_track.steady[:len(dance.vector)][beats]]


# --- pictures ---------------------------------------------------------------------------------------

def _painter(faces, tile: int = TILE):
    from renderer.scene import MeshPainter

    return MeshPainter(faces, width=tile, height=tile)


def _hand_camera(joints: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(eye, target) of a close-up of one hand in a posed frame of (55, 3) joints: from the dancer's front,
    a little outside and above the hand."""
    hand = np.r_[[20 + side], np.arange(25 + 15 * side, 40 + 15 * side)]
    target = joints[hand].mean(axis=0)
    across = joints[16 + side] - joints[17 - side]                        # towards this hand's side
    front = np.cross(np.array([0.0, 1.0, 0.0]), joints[1] - joints[2])      # y × (left hip − right hip)
    front[1] = 0
    direction = front / np.linalg.norm(front) + 0.5 * across / np.linalg.norm(across) + np.array([0, 0.4, 0])
    return target + 0.24 * direction / np.linalg.norm(direction), target


def render_close_ups(body, vectors: list[np.ndarray], frames: list[int], side: int, path: Path) -> Path:
    """One row per vector, one close-up of hand ``side`` per frame (the camera set by the first vector)."""
    from PIL import Image

    from motion.formats import motion_from_vector, prepare_for_body
    from renderer.scene import look_at

    painter = _painter(body.faces)
    rows, cameras = [], None
    for vector in vectors:
        m = prepare_for_body(motion_from_vector(vector[frames]), body)
        joints = body.joints(m)
        if cameras is None:
            cameras = [_hand_camera(j, side) for j in joints]
        verts = np.concatenate(list(body.vertices(m)))
        row = []
        for v, (eye, target) in zip(verts, cameras):
            image = np.zeros((TILE, TILE, 3), np.uint8)
            row.append(painter.paint(v, look_at(eye, target), image))
        rows.append(np.concatenate(row, axis=1))
    painter.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)
    return path


def render_sheet(body, path: Path) -> Path:
    """Every pose on the left hand (arms in the rest pose): from the back of the hand (top row) and from
    below, on the palm's side (bottom row)."""
    import torch
    from PIL import Image, ImageDraw

    from body import rotations
    from motion.formats import Motion
    from renderer.scene import look_at

    rest = body.rest_joints.numpy()
    frames = hand_frames(rest)
    names = list(POSES)
    rot = np.tile(np.eye(3), (len(names), 52, 1, 1))
    for i, name in enumerate(names):
        for side in range(2):
            rot[i, 22 + 15 * side:37 + 15 * side] = rotations_from_angles(POSES[name].angles, frames[side])
    poses = rotations.matrix_to_axis_angle(torch.from_numpy(rot)).numpy().astype(np.float32)
    verts = np.concatenate(list(body.vertices(Motion(poses=poses, trans=np.zeros((len(names), 3), np.float32)))))
    target = rest[20] + np.array([0.09, -0.015, 0.0])
    views = ((target + np.array([0.0, 0.27, 0.06]), (0, 0, -1)), (target + np.array([0.03, -0.2, 0.17]), (0, 1, 0)))
    painter = _painter(body.faces, SHEET_TILE)
    columns = []
    for i, name in enumerate(names):
        tiles = []
        for eye, up in views:
            image = np.zeros((SHEET_TILE, SHEET_TILE, 3), np.uint8)
            tiles.append(painter.paint(verts[i], look_at(eye, target, up=up), image))
        column = Image.fromarray(np.concatenate(tiles, axis=0))
        ImageDraw.Draw(column).text((8, 6), name, fill=(255, 255, 255))
        columns.append(np.asarray(column))
    painter.close()
    per_row = (len(columns) + 1) // 2
    columns += [np.zeros_like(columns[0])] * (2 * per_row - len(columns))
    sheet = np.concatenate([np.concatenate(columns[r * per_row:(r + 1) * per_row], axis=1) for r in range(2)], axis=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path, optimize=True)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--songs", default=",".join(SONGS), help="comma-separated audio files ('' for none)")
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--images", default=None, metavar="DIR", help="write DIR/hands_before_after.png")
    p.add_argument("--sheet", default=None, metavar="PATH", help="write the vocabulary sheet here")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers here")
    p.add_argument("--break_song", action="store_true",
                   help="also dance the demo song with a 10 s break without a steady beat (held chords) in the middle")
    a = p.parse_args()
    generator = pipeline.DanceGenerator(a.checkpoint)
    rest = generator.rest_joints.numpy()
    print(f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); model "
          f"{generator.checkpoint.name}; {a.seconds:g} s of each song, seed {a.seed}")
    if a.sheet:
        print(f"wrote {render_sheet(generator.body, Path(a.sheet))}")
    rows, first = [], None
    songs = [s for s in a.songs.split(",") if s]
    if a.break_song:
        import tempfile

        songs.append(str(song_with_a_break(Path(tempfile.mkdtemp(prefix="hands-")) / "demo_song_with_a_break.wav")))
    for song in songs:
        before = generator.dance(song, pipeline.Settings(duration=a.seconds, seed=a.seed, hand_motion=False))
        t0 = time.perf_counter()
        after = generator.hands_added(before)
        seconds = time.perf_counter() - t0
        beats = steady_beats(before)
        row = {"song": Path(song).name, "beats": int(len(beats)), "applied": after.hands.applied,
               "network_speed": network_hands_move(before.vector)[1], "layer_seconds": seconds,
               "before": measure(before.vector, rest, beats), "after": measure(after.vector, rest, beats),
               "changes_on_beats": sum(c.on_beat for c in after.hands.changes),
               "changes_on_arms": sum(not c.on_beat for c in after.hands.changes)}
        rows.append(row)
        b, f = row["before"], row["after"]
        share = f["change_share"]
        print(f"{row['song']:<50} beats {row['beats']:3d}  speed {b['finger_speed']:.3f} → {f['finger_speed']:.2f} "
              f"rad/s  change share {b['change_share']:.2f} → {share:.2f} ({1 / share if share else float('inf'):.1f} "
              f"beats/change)  inside limits {b['inside_limits']:.3f} → {f['inside_limits']:.3f} (max excess "
              f"{f['max_excess_deg']:.2f}°)  changes {row['changes_on_beats']} on beats + {row['changes_on_arms']} on "
              f"arms  layer {1000 * seconds:.0f} ms")
        note = unsteady_report(before, after)
        if note:
            print(note)
        if first is None:
            first = (before, after)
    if rows:
        speeds = [r["after"]["finger_speed"] for r in rows]
        shares = [r["after"]["change_share"] for r in rows]
        print(f"after, over {len(rows)} songs: finger speed {min(speeds):.2f}–{max(speeds):.2f} rad/s (mean "
              f"{np.mean(speeds):.2f}); change share {min(shares):.2f}–{max(shares):.2f}; network's own finger speed "
              f"{min(r['network_speed'] for r in rows):.4f}–{max(r['network_speed'] for r in rows):.4f} rad/s; "
              f"every angle inside its limit: {all(r['after']['inside_limits'] == 1.0 for r in rows)}")
    if a.images and first is not None:
        before, after = first
        side = 0
        picks, seen = [], set()
        for c in after.hands.changes:
            frame = c.frame + SETTLE + 3
            if c.poses[side] not in seen and frame < len(after.vector):
                picks.append(frame)
                seen.add(c.poses[side])
            if len(picks) == 5:
                break
        path = render_close_ups(generator.body, [before.vector, after.vector], picks, side,
                                Path(a.images) / "hands_before_after.png")
        print(f"wrote {path} (frames {picks}, left hand; top: before, bottom: after)")
        # Through one change into a closed hand, frame by frame: the blend must keep the fingers apart too.
        change = next((c for c in after.hands.changes[1:] if POSES[c.poses[side]].role == "closed"),
                      after.hands.changes[-1])
        strip = [int(f) for f in np.linspace(change.frame - change.blend - 3, change.frame + SETTLE + 2, 5).round()]
        path = render_close_ups(generator.body, [after.vector], strip, side, Path(a.images) / "hands_blend.png")
        print(f"wrote {path} (frames {strip}: into {change.poses[side]} on frame {change.frame}, left hand)")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
