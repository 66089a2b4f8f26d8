"""A whole evaluation: a folder of generated dances against a folder of ground truth (SPEC §8).

:func:`evaluate` reads both folders (see :mod:`eval.data`), computes per dance the 66-d kinetic and
32-d geometric features, foot skating, PFC and (where music is found) the beat alignment with its
chance level, then per set FID (generated vs. ground truth), diversity, and the means of the
per-dance metrics. :func:`write_report` writes ``metrics.json``, ``metrics.md``, ``features.npz`` and
the plots.

Music: the generated set needs music for BAS. Every generated dance must have its music file (a
missing one is an error naming the dance), in the given folders (``--music``) or, without
``--music``, in the default places (:func:`eval.data.default_music_folders`); only when the default
places hold music for no dance at all is BAS left out, with a note. Ground-truth music is looked for in the same way (``gt_music`` or the
defaults, e.g. a FineDance root's ``music_npy/``); ground-truth dances without music get no BAS.

Averages: FSR, PFC and BAS are means over dances (NaN entries, e.g. a dance without foot contact or
without music beats, are skipped); everything is deterministic (no sampling).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval import features as ft
from eval import metrics as mt
from eval.data import EvalInputError, JointLoader, default_music_folders, find_music, motion_files, music_beats
from eval.protocol import MAX_FRAMES, Protocol, get_protocol

PRED, GT = "generated", "ground truth"


@dataclass
class DanceResult:
    """Metrics of one dance. kinetic (66,), geometric (32,); NaN where undefined."""

    name: str
    path: str
    frames: int
    music: str | None
    bas: float
    bas_chance: float
    fsr: float
    fsr_left: float
    fsr_right: float
    pfc: float
    kinetic: np.ndarray
    geometric: np.ndarray

    @property
    def bas_gain(self) -> float:
        return self.bas - self.bas_chance

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "frames": self.frames, "music": self.music,
                "bas": _num(self.bas), "bas_chance": _num(self.bas_chance), "bas_gain": _num(self.bas_gain),
                "fsr": _num(self.fsr), "fsr_left": _num(self.fsr_left), "fsr_right": _num(self.fsr_right),
                "pfc": _num(self.pfc)}


@dataclass
class SetResult:
    label: str
    folder: str
    dances: list[DanceResult]
    summary: dict = field(default_factory=dict)

    @property
    def kinetic(self) -> np.ndarray:
        return np.stack([d.kinetic for d in self.dances])

    @property
    def geometric(self) -> np.ndarray:
        return np.stack([d.geometric for d in self.dances])


@dataclass
class Report:
    protocol: Protocol
    pred: SetResult
    gt: SetResult
    settings: dict
    notes: list[str]
    timeline: dict | None = None     # beat-alignment timeline of one generated dance, for the plot

    def to_dict(self) -> dict:
        return {"protocol": self.protocol.to_dict(), "settings": self.settings, "notes": self.notes,
                "table": {s.label: s.summary for s in (self.pred, self.gt)},
                "dances": {s.label: [d.to_dict() for d in s.dances] for s in (self.pred, self.gt)}}


def _num(x) -> float | None:
    """JSON-safe number: NaN and infinities become null."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _nanmean(values) -> float:
    v = np.asarray([x for x in values if x is not None], np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _evaluate_dance(path: Path, joints: np.ndarray, rest_joints: np.ndarray, music: Path | None,
                    protocol: Protocol) -> tuple[DanceResult, np.ndarray | None]:
    rel = ft.root_relative(joints)
    kinetic = ft.kinetic_features(rel, protocol.kinetic_frame_time, protocol.acceleration_bug)
    geometric = ft.geometric_features(rel, rest_joints, protocol.geometric_frame_time)
    skating = mt.foot_skating(joints, protocol)
    beats_, alignment = None, None
    if music is not None:
        beats_ = music_beats(music)
        alignment = mt.bas(joints, beats_, protocol)
    return DanceResult(
        name=path.stem, path=str(path), frames=len(joints), music=None if music is None else str(music),
        bas=alignment.bas if alignment else float("nan"),
        bas_chance=alignment.chance if alignment else float("nan"),
        fsr=skating.ratio, fsr_left=skating.left, fsr_right=skating.right, pfc=mt.pfc(joints, protocol),
        kinetic=kinetic, geometric=geometric), beats_


def _music_folders(given, motion_dir) -> tuple[list[Path], bool]:
    if given:
        folders = [Path(g) for g in ([given] if isinstance(given, (str, os.PathLike)) else given)]
        for f in folders:
            if not f.is_dir():
                raise EvalInputError(f"{f}: music folder not found")
        return folders, True
    return default_music_folders(motion_dir), False


def _evaluate_set(label: str, folder, music, loader: JointLoader, protocol: Protocol, max_frames: int,
                  notes: list[str], keep: str | None = None, progress: bool = True):
    """Evaluate every dance of a folder. Returns the SetResult and, for dance ``keep``, its
    (joints, music beats) for the timeline plot."""
    from tqdm import tqdm

    files = motion_files(folder)
    music_dirs, explicit = _music_folders(music, folder)
    found = {p.stem: find_music(p.stem, music_dirs) for p in files}
    missing = [p for p in files if found[p.stem] is None]
    if label == PRED and missing and (explicit or len(missing) < len(files)):
        shown = ", ".join(str(p) for p in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise EvalInputError(f"no music for {shown}: expected NAME.npy (35-d features) or NAME.<audio> in "
                             f"{', '.join(map(str, music_dirs))} (or their music/, music_npy/, music_wav/)")
    if missing and len(missing) < len(files):
        notes.append(f"{label}: {len(missing)} of {len(files)} dances have no music; no BAS for them "
                     f"(e.g. {missing[0].name})")
    elif missing:
        notes.append(f"{label}: no music found in {', '.join(map(str, music_dirs))}; BAS not computed "
                     f"(pass --music{'' if label == PRED else ' / --gt_music'} DIR)")
    dances, kept = [], None
    rest = loader.rest_joints
    for path in tqdm(files, desc=f"{label:>12}", unit="dance", disable=not progress, leave=False):
        joints = loader(path, max_frames)
        result, beats_ = _evaluate_dance(path, joints, rest, found[path.stem], protocol)
        dances.append(result)
        if keep is not None and path.stem == keep:
            kept = (joints, beats_)
    return SetResult(label, str(files[0].parent), dances), kept


def _summaries(pred: SetResult, gt: SetResult, protocol: Protocol) -> None:
    k = mt.fid_div(pred.kinetic, gt.kinetic, protocol)
    g = mt.fid_div(pred.geometric, gt.geometric, protocol)
    for s, fid_k, fid_g, div_k, div_g in ((pred, k["fid"], g["fid"], k["div"], g["div"]),
                                          (gt, None, None, k["div_gt"], g["div_gt"])):
        with_music = [d for d in s.dances if d.music is not None]
        s.summary = {
            "files": len(s.dances), "frames_mean": float(np.mean([d.frames for d in s.dances])),
            "fid_k": _num(fid_k), "fid_g": _num(fid_g), "div_k": _num(div_k), "div_g": _num(div_g),
            "fsr": _num(_nanmean(d.fsr for d in s.dances)), "pfc": _num(_nanmean(d.pfc for d in s.dances)),
            "bas": _num(_nanmean(d.bas for d in with_music)),
            "bas_chance": _num(_nanmean(d.bas_chance for d in with_music)),
            "bas_gain": _num(_nanmean(d.bas_gain for d in with_music)), "with_music": len(with_music)}


def evaluate(pred_dir, gt_dir, music=None, gt_music=None, protocol: str | Protocol = "clean",
             body_model=None, max_frames: int = MAX_FRAMES, plot_song: str | None = None,
             progress: bool = True) -> Report:
    """Evaluate a folder of generated dances against a folder of ground truth (module docstring).

    plot_song: name (file stem) of the generated dance whose beat timeline is kept for the plot
    (default: the first dance with music). Raises EvalInputError naming the offending file.
    """
    protocol = get_protocol(protocol)
    if max_frames < 3:
        raise EvalInputError(f"max_frames must be at least 3, got {max_frames}")
    pred_files = motion_files(pred_dir)
    motion_files(gt_dir)
    if plot_song is not None and plot_song not in {p.stem for p in pred_files}:
        raise EvalInputError(f"--plot_song {plot_song}: no such dance in {pred_dir} "
                             f"(names: {', '.join(p.stem for p in pred_files[:5])}…)")
    loader = JointLoader(body_model)
    notes: list[str] = []
    keep = plot_song
    if keep is None:
        dirs, _ = _music_folders(music, pred_dir)
        keep = next((p.stem for p in pred_files if find_music(p.stem, dirs) is not None), None)
    pred, kept = _evaluate_set(PRED, pred_dir, music, loader, protocol, max_frames, notes, keep, progress)
    gt, _ = _evaluate_set(GT, gt_dir, gt_music, loader, protocol, max_frames, notes, None, progress)
    if len(gt.dances) < 2:
        notes.append("ground truth has fewer than 2 dances: FID and diversity are undefined (null)")
    _summaries(pred, gt, protocol)
    timeline = None
    if kept is not None and kept[1] is not None:
        timeline = _timeline(keep, *kept, protocol)
    elif plot_song is not None:
        notes.append(f"--plot_song {plot_song}: no music found for it, so no beat-alignment plot")
    settings = {"max_frames": max_frames, "fps": 30, "body_model": str(loader.body.path),
                "body": loader.body.name, "joints": "22 SMPL-X body joints after forward kinematics",
                "pred_dir": str(pred_dir), "gt_dir": str(gt_dir),
                "music": None if music is None else str(music), "gt_music": None if gt_music is None else str(gt_music),
                "body_dimensions": ft.body_dimensions(loader.rest_joints)}
    return Report(protocol=protocol, pred=pred, gt=gt, settings=settings, notes=notes, timeline=timeline)


def _timeline(name: str, joints: np.ndarray, beats_: np.ndarray, protocol: Protocol) -> dict:
    from scipy.ndimage import gaussian_filter1d

    from sync import beats as kb

    speed = kb.joint_speed(joints)
    music = mt.segment_beats(beats_, len(joints), protocol)
    alignment = mt.bas(joints, beats_, protocol)
    return {"name": name, "speed": speed, "smoothed": gaussian_filter1d(speed, kb.SPEED_SIGMA, mode="nearest"),
            "motion_beats": kb.motion_beats(joints), "music_beats": music, "bas": alignment.bas,
            "chance": alignment.chance}


# ---------------------------------------------------------------------------------------------
# Output

COLUMNS = (("fid_k", "FID_k↓", "{:.2f}"), ("fid_g", "FID_g↓", "{:.2f}"), ("fsr", "FSR↓", "{:.2%}"),
           ("pfc", "PFC↓", "{:.3f}"), ("div_k", "Div_k↑", "{:.2f}"), ("div_g", "Div_g↑", "{:.2f}"),
           ("bas", "BAS↑", "{:.4f}"), ("bas_chance", "BAS chance", "{:.4f}"), ("bas_gain", "BAS gain↑", "{:+.4f}"))


def _cell(value, fmt: str) -> str:
    return "–" if value is None else fmt.format(value)


def markdown(report: Report) -> str:
    """The results as a markdown table with the protocol and notes."""
    lines = [f"# Evaluation ({report.protocol.name} protocol)", "",
             f"Generated: `{report.pred.folder}` ({report.pred.summary['files']} dances); ground truth: "
             f"`{report.gt.folder}` ({report.gt.summary['files']} dances). First {report.settings['max_frames']} "
             f"frames at 30 fps, 22 body joints of {report.settings['body']}.", "",
             "| set | dances | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for s in (report.pred, report.gt):
        cells = [_cell(s.summary.get(key), fmt) for key, _, fmt in COLUMNS]
        lines.append(f"| {s.label} | {s.summary['files']} | " + " | ".join(cells) + " |")
    lines += ["", "FID against the ground-truth set; Div, FSR, PFC and BAS of each set itself. BAS chance: the same "
              "motion against the beat grid shifted by fractions of a beat; gain = BAS − chance.", ""]
    if report.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in report.notes] + [""]
    lines += ["## Per dance (generated)", "", "| dance | frames | BAS | chance | gain | FSR | PFC |",
              "|---|---|---|---|---|---|---|"]
    for d in report.pred.dances:
        v = d.to_dict()
        lines.append(f"| {d.name} | {d.frames} | {_cell(v['bas'], '{:.4f}')} | {_cell(v['bas_chance'], '{:.4f}')} | "
                     f"{_cell(v['bas_gain'], '{:+.4f}')} | {_cell(v['fsr'], '{:.2%}')} | {_cell(v['pfc'], '{:.3f}')} |")
    return "\n".join(lines) + "\n"


def write_report(report: Report, out_dir: str | os.PathLike) -> list[Path]:
    """Write metrics.json, metrics.md, features.npz (every dance's raw kinetic and geometric features),
    kinetic_features.png and (with a timeline) beats_NAME.png."""
    from eval import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json", out / "metrics.md", out / "features.npz"]
    written[0].write_text(json.dumps(report.to_dict(), indent=1, ensure_ascii=False) + "\n")
    written[1].write_text(markdown(report))
    np.savez(written[2], pred_names=np.array([d.name for d in report.pred.dances]), pred_kinetic=report.pred.kinetic,
             pred_geometric=report.pred.geometric, gt_names=np.array([d.name for d in report.gt.dances]),
             gt_kinetic=report.gt.kinetic, gt_geometric=report.gt.geometric)
    written.append(plots.feature_distributions(report.pred.kinetic, report.gt.kinetic, report.pred.geometric,
                                               report.gt.geometric, out / "kinetic_features.png",
                                               title=f"{report.protocol.name} protocol"))
    if report.timeline is not None:
        written.append(plots.beat_timeline(report.timeline, out / f"beats_{report.timeline['name']}.png"))
    return written
