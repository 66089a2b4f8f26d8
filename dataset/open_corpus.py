"""An open, beat-synchronous training set in the FineDance layout, from CMU dance mocap and the
project's annotated music (``../shared/data/cmu_dance`` and ``../shared/data/music``).

The CMU clips were danced to music we do not have, so pairing them with other music as-is would
teach a model nothing about rhythm. Instead each clip is *time-warped* so that its own kinematic
beats fall on the annotated beats of a music track, then cut together with that music.

Method
------
1. Motion. Every CMU BVH is retargeted onto the body (``dataset.retarget``; the real SMPL-X model
   when present, else ours) and mirrored (left/right swapped) to double the set. Its kinematic beats
   are the speed minima of the 22 body joints (``sync.beats.motion_beats``, σ = 5 frames, the
   evaluation's definition). A mirror has the same beats as its original.
2. Music. Each track's beats are its exact annotation (``beat_times_s`` of the JSON beside the
   audio, MIDI note-on times), not a beat tracker's guess.
3. Tempo compatibility. The motion's pulse (median interval between its beats) must be within the
   slope limits of the track's median beat period times ½, 1, 2 or 3; other tracks are not tried.
   ×3 is there because these clips' kinematic beats are sparse: their pulse is 23–65 frames
   (median ≈ 36, a pause every ~1.2 s), which is two or three beats of 90–150 BPM music; their
   speed curves have no usable periodicity at the beat rate itself (weak autocorrelation).
4. Alignment (dynamic programming, :func:`align_beats`). A chain of anchors (motion beat i ↦ music
   beat j), both increasing, where every segment between consecutive anchors has a time-scale
   ("slope": music frames per motion frame) in [0.75, 1.33] and spans at most ``MAX_SKIP`` unmatched
   motion beats. Score = anchors − 2·Σ|ln slope| (each matched beat is worth one; distortion costs).
   Motion beats left out of the chain (off-beat accents, or beats that would need a larger
   distortion) keep their relative timing. The best chain also chooses where in the track the clip
   goes. Pairs are ranked by score / number of motion beats.
5. Warp (:func:`steady_time_warp`). A piecewise-linear time map through the anchors, with every
   slope within the limits. Its slope is held constant within ±10 frames of each beat and changes
   only in between (three pieces per segment: the beat's slope, a middle slope that makes the
   segment end on the next anchor, the next beat's slope; the beat slopes are chosen by dynamic
   programming for the smallest speed changes). A slope change right at a beat would scale the
   speed differently on its two sides and move the minimum of the *smoothed* speed (σ = 5) off
   the music beat by one or two frames; held steady, the beats detected on the warped motion land
   on their targets to a fraction of a frame (tests/test_open_corpus.py). Where a segment is too
   short or too steep for that, the steady zone shrinks, down to the plain polyline. The corners
   between the pieces (not those at beats) are rounded over ±4 frames, so the speed ramps rather
   than jumps in mid-movement. The motion is resampled at the mapped times: slerp for the 52 joint
   rotations, linear for translation. Resampling only re-times the motion, so a planted foot
   stays planted (no new foot skating); its speed changes by at most the slope limits.
6. Cut. The music segment is the warped motion's span, cropped to the part of the track that has
   beats (from one beat period before the first to one after the last, within the file). It starts
   on a whole sample of the 15360 Hz audio, so frames line up exactly: ``music_npy`` is
   ``audio.music.music_features`` on the segment (1 + N // 512 frames, the extra one dropped), so
   motion and music have the same number of frames. With ``reference`` (``--reference``) it is instead
   what FineDance's official ``pre_music.py`` computes from the segment's file in ``music_wav/``
   (``audio.music.reference_song_features``: the 16-bit WAV read back by librosa, the beat tracker
   started at librosa's tempo at 22,050 Hz), for training by the official recipe.
7. Pairs. Each clip is paired with its ``tracks_per_clip`` best-ranked tracks and its mirror with the
   next ones (originals take ranks 1, 3, 5…, mirrors 2, 4, 6…), so a clip is heard with different
   music in its two mirror images. A track's rank score drops by ``USAGE_PENALTY`` per pair it
   already has, so the music spreads over the tracks instead of piling onto the few fast ones whose
   beat, tripled, matches most clips' pulse. Pairs shorter than ``min_frames`` are dropped.
8. Held out, never in a training pair: the tracks in ``HELD_OUT_TRACKS`` (including the demo song
   d01) and the clips in ``HELD_OUT_CLIPS`` with their mirrors. Test pairs combine held-out clips
   (originals only) with held-out tracks. The build is deterministic: there is no random choice
   anywhere (ties go to the first candidate in sorted order), so the same inputs give the same
   corpus.

Steps 4–5 and the resampling live in ``sync.time_warp``, shared with the beat sync of generated
dances.

BAS (``sync.beats``) is reported for every pair against the annotated beats and against
librosa's beats in the segment's features (what an evaluator sees): before warping (the unwarped
clip placed at the same spot in the same music), after warping (beats detected afresh on the warped
motion), and the chance levels (the same motion against the beat grid shifted by fractions of a
beat; ``sync.beats.chance_bas``).

Result of the default build (55 CMU clips, 30 tracks; about 75 s on 2 CPU cores): train 200
pairs = 50 clips × (original + mirror) × 2 tracks (23 tracks), 76.6 min, 9391 windows of 120
frames; test 8 pairs = 4 held-out clips × 2 of the 6 held-out tracks, 3.2 min. BAS against the
annotated beats, train: 0.209 before warping (chance 0.193) → 0.359 after (chance 0.186); test:
0.209 (0.183) → 0.326 (0.177). Against librosa's beats in the features: train 0.207 → 0.292
(chance 0.187), test 0.220 → 0.276 (0.174). 05_08 (one kinematic beat every ~2 s) fits no track.

Limits
------
- The dance was not choreographed to this music: only its timing is fitted. Phrasing, energy and
  style need not match the track (salsa on a waltz is possible when the tempi fit).
- Kinematic beats are sparse (a pause every 1–2 s, often every second or third music beat), so
  even a perfect warp leaves many music beats without a motion beat: BAS after warping is well
  below 1; the gain over chance is the meaningful number.
- Modern-dance clips (subject 05) are short (4–15 s) and rhythmically free; their beats fit less
  well. Hands carry no mocap (a fixed relaxed curl from the retargeting).
- A clip longer than its track is cropped to the track. Slopes up to 1.33 slow a clip by a third;
  movement speed changes accordingly.
- The hands do not move, so the loader's still-window filter (mean channel std > 0.07 on FineDance)
  would drop 98% of the windows; ``splits.json`` carries ``"min_std": 0.02`` for this corpus.
- Subjects 60 and 61 are the two partners of one salsa couple, so their clips with the same trial
  number share timing; both 60_15 and 61_15 are held out together.
"""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from body.skeleton import FPS
from sync import beats as kb
from audio import music as mu
from sync.time_warp import (SLOPE_LIMITS, Alignment, TimeWarp, align_beats, sample_motion,
                               steady_time_warp)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
DEFAULT_CMU_DIR = SHARED_DATA / "cmu_dance"
DEFAULT_MUSIC_DIR = SHARED_DATA / "music"

HELD_OUT_TRACKS = ("d01", "d05", "d09", "d14", "d19", "d28")   # d01 is the demo song
HELD_OUT_CLIPS = ("05_20", "94_15", "60_15", "61_15")
TEMPO_MULTIPLES = (0.5, 1.0, 2.0, 3.0)   # motion pulse ≈ this many music beats
MIN_FRAMES = mu.WINDOW          # a pair must hold at least one training window
USAGE_PENALTY = 0.01            # rank-score cost per pair a track already has (spreads the music)
CORPUS_MIN_STD = 0.02           # still-window threshold for the loader (splits.json; see dataset/finedance.py)


class CorpusError(ValueError):
    """The inputs cannot make a corpus (missing folders, unreadable annotations). Names the file."""


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class Track:
    """An annotated music track. beats: (M,) beat times in 30 fps frames from the first sample."""

    name: str
    path: Path
    beats: np.ndarray
    duration_s: float
    style: str
    bpm: float

    @property
    def id(self) -> str:
        return self.name.split("_")[0]

    @property
    def period(self) -> float:
        """Median beat interval in frames."""
        return float(np.median(np.diff(self.beats)))


@dataclass
class Clip:
    """A retargeted motion clip. motion: (T, 315) float32 at 30 fps; beats: its kinematic beats."""

    name: str
    source: str
    style: str
    mirrored: bool
    motion: np.ndarray
    beats: np.ndarray

    @property
    def cmu_id(self) -> str:
        return "_".join(self.name.split("_")[:2])

    @property
    def pulse(self) -> float:
        """Median interval between the clip's kinematic beats, frames (inf with fewer than 2)."""
        return float(np.median(np.diff(self.beats))) if len(self.beats) > 1 else float("inf")


def load_tracks(music_dir: str | os.PathLike) -> list[Track]:
    """Every audio file with a JSON annotation beside it, sorted by name."""
    music_dir = Path(music_dir)
    if not music_dir.is_dir():
        raise CorpusError(f"{music_dir}: music folder not found (pass --music_dir)")
    tracks = []
    for ann in sorted(music_dir.glob("*.json")):
        audio = [p for p in (ann.with_suffix(e) for e in mu.AUDIO_EXTENSIONS) if p.is_file()]
        if not audio:
            continue
        try:
            meta = json.loads(ann.read_text())
            beats = np.asarray(meta["beat_times_s"], np.float64) * FPS
            duration = float(meta["duration_s"])
        except (KeyError, ValueError, TypeError) as e:
            raise CorpusError(f"{ann}: not a beat annotation with beat_times_s and duration_s ({e})") from None
        if len(beats) < 2 or np.any(np.diff(beats) <= 0):
            raise CorpusError(f"{ann}: beat_times_s must hold at least two increasing times")
        bpm = meta.get("tempo_bpm") or meta.get("tempo_bpm_median") or 60 * FPS / np.median(np.diff(beats))
        tracks.append(Track(ann.stem, audio[0], beats, duration, str(meta.get("style", "")), float(bpm)))
    if not tracks:
        raise CorpusError(f"{music_dir}: no audio file with a beat annotation (.json) beside it")
    return tracks


def _clip_styles(cmu_dir: Path) -> dict[str, str]:
    manifest = cmu_dir / "manifest.csv"
    if not manifest.is_file():
        return {}
    with open(manifest, newline="") as f:
        return {row["file"]: row.get("style", "") for row in csv.DictReader(f)}


def load_clips(cmu_dir: str | os.PathLike, body_path: str | os.PathLike | None = None, mirror: bool = True,
               only: tuple[str, ...] | None = None, progress: bool = True) -> list[Clip]:
    """Retarget every BVH of the CMU folder (and mirror it) and find its kinematic beats.

    only: CMU ids (e.g. ``"05_02"``) to keep; all when None.
    """
    from tqdm import tqdm

    from body.body_model import CANONICAL_LEG_LENGTH, find_body_model
    from dataset import retarget
    from motion.formats import motion_to_vector, resample

    cmu_dir = Path(cmu_dir)
    files = sorted(cmu_dir.glob("*.bvh")) if cmu_dir.is_dir() else []
    if not files:
        raise CorpusError(f"{cmu_dir}: no .bvh files (pass --cmu_dir)")
    if only is not None:
        files = [f for f in files if "_".join(f.stem.split("_")[:2]) in only]
    body = retarget.RestBody.from_model_file(find_body_model(body_path))
    rest = torch.from_numpy(body.joints).float()
    styles = _clip_styles(cmu_dir)
    clips = []
    for path in tqdm(files, desc="retargeting", unit="clip", disable=not progress):
        result = retarget.retarget_file(path, body, target_leg_length=CANONICAL_LEG_LENGTH)
        motion = resample(result.motion, FPS)
        vec = motion_to_vector(motion, with_contacts=False)
        found = kb.motion_beats(kb.body_joints(vec, rest))
        style = styles.get(path.name) or path.stem.split("_")[-1]
        clips.append(Clip(path.stem, path.name, style, False, vec, found))
        if mirror:
            mvec = motion_to_vector(retarget.mirror_motion(motion), with_contacts=False)
            clips.append(Clip(f"{path.stem}_mirror", path.name, style, True, mvec, found.copy()))
    return clips


# ---------------------------------------------------------------------------------------------
# Tempo


def tempo_compatible(pulse: float, period: float, limits=SLOPE_LIMITS, multiples=TEMPO_MULTIPLES) -> bool:
    """Whether a motion pulse (frames) can be time-scaled onto a multiple of a music beat period."""
    return any(limits[0] <= m * period / pulse <= limits[1] for m in multiples)


# ---------------------------------------------------------------------------------------------
# Pairs


@dataclass
class Pair:
    """One clip warped onto one track. start: music frame (a whole number of audio samples) of the
    output's frame 0; n_frames: output length; alignment: the anchors used."""

    clip: Clip
    track: Track
    alignment: Alignment
    warp: TimeWarp
    start: float
    n_frames: int
    rank_score: float

    @property
    def name(self) -> str:
        return f"{self.clip.name}__{self.track.id}"

    def segment_beats(self) -> np.ndarray:
        """Annotated music beats inside the segment, in output frames."""
        b = self.track.beats - self.start
        return b[(b >= 0) & (b <= self.n_frames - 1)]


def plan_pair(clip: Clip, track: Track, limits=SLOPE_LIMITS, min_frames: int = MIN_FRAMES) -> Pair | None:
    """Align one clip with one track and decide the music segment; None when they do not fit."""
    al = align_beats(clip.beats, track.beats, limits)
    if al is None or len(al.src) < 2:
        return None
    warp = steady_time_warp(al.src, al.dst, len(clip.motion), limits)
    a, b = warp.span
    period = track.period
    music_end = min(track.duration_s * FPS, track.beats[-1] + period)
    lo_frame = max(0.0, track.beats[0] - period, a)
    hi_frame = min(music_end, b)
    start = np.ceil(lo_frame * mu.HOP) / mu.HOP          # a whole sample of the 15360 Hz audio
    n_frames = int(np.floor(hi_frame - start)) + 1
    if n_frames < min_frames:
        return None
    return Pair(clip, track, al, warp, float(start), n_frames, al.score / max(1, len(clip.beats)))


def choose_pairs(clips: list[Clip], tracks: list[Track], tracks_per_clip: int, limits=SLOPE_LIMITS,
                 min_frames: int = MIN_FRAMES, share_mirror: bool = True, usage_penalty: float = USAGE_PENALTY,
                 progress: bool = True) -> list[Pair]:
    """Pair every clip with its best-ranked compatible tracks (see the module docstring, step 7).

    With ``share_mirror`` a clip and its mirror split the ranking (original: ranks 1, 3, …; mirror:
    2, 4, …); a mirror without its original in ``clips`` takes the best ranks itself. Clips are
    taken in sorted order, and a track's rank score is lowered by ``usage_penalty`` for every pair
    it already has, so the music is spread over many tracks rather than the few whose tempo suits
    most clips.
    """
    from tqdm import tqdm

    by_source: dict[str, list[Clip]] = {}
    for c in clips:
        by_source.setdefault(c.source, []).append(c)
    uses = {t.name: 0 for t in tracks}
    pairs = []
    for source in tqdm(sorted(by_source), desc="aligning", unit="clip", disable=not progress):
        group = sorted(by_source[source], key=lambda c: c.mirrored)
        lead = group[0]
        ranked = []
        for track in tracks:
            if not tempo_compatible(lead.pulse, track.period, limits):
                continue
            p = plan_pair(lead, track, limits, min_frames)
            if p is not None:
                ranked.append(p)
        # Stable sort: ties keep the tracks' sorted order.
        ranked.sort(key=lambda p: -(p.rank_score - usage_penalty * uses[p.track.name]))
        share = share_mirror and len(group) > 1
        for k, clip in enumerate(group):
            picks = ranked[k::len(group)] if share else ranked
            for p in picks[:tracks_per_clip]:
                pairs.append(Pair(clip, p.track, p.alignment, p.warp, p.start, p.n_frames, p.rank_score))
                uses[p.track.name] += 1
    return pairs


METRICS = ("bas_before", "chance_before", "bas_after", "chance_after",
           "bas_before_librosa", "bas_after_librosa", "chance_after_librosa")


@dataclass
class PairResult:
    """What was written for one pair: its name, split, length, label and BAS numbers (METRICS)."""

    name: str
    split: str
    frames: int
    label: dict
    metrics: dict = field(default_factory=dict)


def render_pair(pair: Pair, audio: np.ndarray, rest_joints: torch.Tensor,
                reference_wav: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Warp the motion and cut the music of a planned pair.

    audio: the whole track, mono float32 at 15360 Hz. Returns (motion (T, 315), music features
    (T, 35), audio segment (T·512,), stats) with T = pair.n_frames. reference_wav: write the
    segment there (its ``music_wav/`` file) and take the official ``pre_music.py``'s features of that
    file (``audio.music.reference_song_features``) instead of ours.
    """
    n = pair.n_frames
    src = pair.warp.inverse(pair.start + np.arange(n))
    motion = sample_motion(pair.clip.motion, src)
    first = int(round(pair.start * mu.HOP))
    seg = audio[first:first + n * mu.HOP]
    seg = np.pad(seg, (0, n * mu.HOP - len(seg)))
    if reference_wav is None:
        feats = mu.music_features(seg)[0][:n]
    else:
        from dataset.finedance import write_music_wav

        feats = mu.reference_song_features(write_music_wav(reference_wav, seg))[0][:n]
    if len(feats) != n:
        raise AssertionError(f"{pair.name}: {len(feats)} music frames for {n} motion frames")

    music_beats = pair.segment_beats()
    librosa_beats = kb.music_beats_from_features(feats)
    after = kb.motion_beats(kb.body_joints(motion, rest_joints))
    before = pair.clip.beats - src[0]                 # the unwarped clip placed at the same spot
    before = before[(before >= 0) & (before < n)]
    slopes = pair.warp.slopes
    stats = {
        "bas_before": kb.beat_alignment_score(music_beats, before),
        "chance_before": kb.chance_bas(music_beats, before, n),
        "bas_after": kb.beat_alignment_score(music_beats, after),
        "chance_after": kb.chance_bas(music_beats, after, n),
        "bas_before_librosa": kb.beat_alignment_score(librosa_beats, before),
        "bas_after_librosa": kb.beat_alignment_score(librosa_beats, after),
        "chance_after_librosa": kb.chance_bas(librosa_beats, after, n),
        "time_warp": {
            "anchors": int(len(pair.alignment.src)),
            "motion_beats": int(len(pair.clip.beats)),
            "matched_fraction": round(len(pair.alignment.src) / max(1, len(pair.clip.beats)), 4),
            "slope_min": round(float(slopes.min()), 4), "slope_max": round(float(slopes.max()), 4),
            "slope_mean": round(float((pair.alignment.dst[-1] - pair.alignment.dst[0])
                                      / max(1e-9, pair.alignment.src[-1] - pair.alignment.src[0])), 4),
            "source_frames_used": [round(float(src[0]), 3), round(float(src[-1]), 3)],
            "source_frames": int(len(pair.clip.motion)),
            "music_start_s": round(pair.start / FPS, 6),
            "seconds": round(n / FPS, 4),
            "rank_score": round(pair.rank_score, 4),
        },
    }
    return motion, feats, seg, stats


MANIFEST_FIELDS = ("name", "split", "clip", "source_bvh", "style", "mirrored", "track", "music_style",
                   "bpm", "music_start_s", "frames", "seconds", "anchors", "motion_beats", "slope_min",
                   "slope_max") + METRICS


def build(out: str | os.PathLike, cmu_dir: str | os.PathLike = DEFAULT_CMU_DIR,
          music_dir: str | os.PathLike = DEFAULT_MUSIC_DIR, body_path: str | os.PathLike | None = None,
          tracks_per_clip: int = 2, test_tracks_per_clip: int = 2, held_out_tracks=HELD_OUT_TRACKS,
          held_out_clips=HELD_OUT_CLIPS, limits=SLOPE_LIMITS, min_frames: int = MIN_FRAMES,
          only_clips: tuple[str, ...] | None = None, only_tracks: tuple[str, ...] | None = None,
          overwrite: bool = False, progress: bool = True, reference: bool = False) -> dict:
    """Build the corpus into ``out`` (see the module docstring). Returns the summary also written
    to ``out/summary.json``.

    reference: ``music_npy`` as the official ``pre_music.py`` computes it from each ``music_wav``
    file (step 6; summary ``music_features``: 'reference'), else ours ('ours').

    only_clips / only_tracks: CMU ids / track ids (``"d07"``) to restrict the build to (for tests
    and quick looks); held-out rules still apply. overwrite: replace a corpus already in ``out``
    (only the corpus's own folders and files are removed); otherwise that is an error.
    """
    from tqdm import tqdm

    from body.body_model import find_body_model
    from dataset import retarget
    from dataset.finedance import write_music_wav

    t0 = time.time()
    out = Path(out)
    _clear_previous(out, overwrite)
    tracks = load_tracks(music_dir)
    if only_tracks is not None:
        tracks = [t for t in tracks if t.id in only_tracks]
    clips = load_clips(cmu_dir, body_path, mirror=True, only=only_clips, progress=progress)
    rest = torch.from_numpy(retarget.RestBody.from_model_file(find_body_model(body_path)).joints).float()

    held_t, held_c = set(held_out_tracks), set(held_out_clips)
    train = choose_pairs([c for c in clips if c.cmu_id not in held_c],
                         [t for t in tracks if t.id not in held_t], tracks_per_clip, limits, min_frames,
                         progress=progress)
    test = choose_pairs([c for c in clips if c.cmu_id in held_c and not c.mirrored],
                        [t for t in tracks if t.id in held_t], test_tracks_per_clip, limits, min_frames,
                        progress=progress)
    for sub in CORPUS_FOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)

    audio_cache: dict[str, np.ndarray] = {}
    results: list[PairResult] = []
    jobs = [(p, "train") for p in train] + [(p, "test") for p in test]
    for pair, split in tqdm(jobs, desc="writing pairs", unit="pair", disable=not progress):
        if pair.track.name not in audio_cache:
            audio_cache[pair.track.name] = mu.load_audio(pair.track.path)
        wav = out / "music_wav" / f"{pair.name}.wav"
        motion, feats, seg, stats = render_pair(pair, audio_cache[pair.track.name], rest, wav if reference else None)
        np.save(out / "motion" / f"{pair.name}.npy", motion)
        np.save(out / "music_npy" / f"{pair.name}.npy", feats)
        if not reference:                 # (written by render_pair, which read its features from it)
            write_music_wav(wav, seg)
        label = {"name": pair.name, "split": split, "style": pair.clip.style,
                 "source_clip": pair.clip.cmu_id, "source_bvh": pair.clip.source, "mirrored": pair.clip.mirrored,
                 "source_track": pair.track.path.name, "music_style": pair.track.style,
                 "bpm": round(pair.track.bpm, 3), "frames": pair.n_frames, "fps": FPS, **stats}
        (out / "label_json" / f"{pair.name}.json").write_text(json.dumps(_rounded(label), indent=1))
        results.append(PairResult(pair.name, split, pair.n_frames, label, {k: stats[k] for k in METRICS}))

    _write_manifest(out / "manifest.csv", results)
    splits = {"train": sorted(r.name for r in results if r.split == "train"),
              "test": sorted(r.name for r in results if r.split == "test"),
              "min_std": CORPUS_MIN_STD,
              "held_out_tracks": sorted(held_t), "held_out_clips": sorted(held_c)}
    (out / "splits.json").write_text(json.dumps(splits, indent=1))
    summary = {"build_seconds": round(time.time() - t0, 1), "music_features": "reference" if reference else "ours",
               "slope_limits": list(limits),
               "tracks_per_clip": tracks_per_clip, "test_tracks_per_clip": test_tracks_per_clip}
    for split in ("train", "test"):
        rs = [r for r in results if r.split == split]
        summary[split] = _split_summary(rs)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


CORPUS_FOLDERS = ("motion", "music_wav", "music_npy", "label_json")
CORPUS_FILES = ("manifest.csv", "splits.json", "summary.json")


def _clear_previous(out: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier build, or remove it (its own folders and files only)."""
    import shutil

    existing = [out / n for n in CORPUS_FOLDERS + CORPUS_FILES if (out / n).exists()]
    if not existing:
        return
    if not overwrite:
        raise CorpusError(f"{out}: already holds a corpus ({existing[0].name}, …); pass --overwrite to replace it")
    for p in existing:
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _rounded(x):
    if isinstance(x, float):
        return round(x, 5)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _split_summary(rs: list[PairResult]) -> dict:
    mean = lambda key: round(float(np.nanmean([r.metrics[key] for r in rs])), 4) if rs else None
    return {
        "pairs": len(rs),
        "source_clips": len({r.label["source_clip"] for r in rs}),
        "motion_variants": len({(r.label["source_clip"], r.label["mirrored"]) for r in rs}),
        "tracks": len({r.label["source_track"] for r in rs}),
        "pairs_per_track": {t: n for t, n in sorted(_count(r.label["source_track"] for r in rs).items())},
        "pairs_per_style": {t: n for t, n in sorted(_count(r.label["style"] for r in rs).items())},
        "minutes": round(sum(r.frames for r in rs) / FPS / 60, 2),
        **{key: mean(key) for key in METRICS},
    }


def _count(items) -> dict:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _write_manifest(path: Path, results: list[PairResult]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        w.writeheader()
        for r in results:
            lab, tw = r.label, r.label["time_warp"]
            w.writerow({"name": r.name, "split": r.split, "clip": lab["source_clip"], "source_bvh": lab["source_bvh"],
                        "style": lab["style"], "mirrored": int(lab["mirrored"]), "track": lab["source_track"],
                        "music_style": lab["music_style"], "bpm": lab["bpm"], "music_start_s": tw["music_start_s"],
                        "frames": r.frames, "seconds": tw["seconds"], "anchors": tw["anchors"],
                        "motion_beats": tw["motion_beats"], "slope_min": tw["slope_min"],
                        "slope_max": tw["slope_max"],
                        **{k: f"{r.metrics[k]:.4f}" for k in METRICS}})
