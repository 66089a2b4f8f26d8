"""What does ``--style`` do to a dance, and what does it cost? (issue 22)

    python -m eval.style_report --checkpoint FILE --label NAME --out DIR \\
        [--runs network:any:0,network:modern:0,…] [--tracks d01,d05,…] [--seconds 20]

For every run ``MODE:STYLE:SEED`` (MODE ``network``: the network alone, no retrieval, beat sync or
foot lock; ``default``: what ``generate_dance.py`` makes) the first ``--seconds`` of each held-out
track (``dataset.open_corpus.HELD_OUT_TRACKS``: rendered CC0 songs no training pair used) are
danced with ``pipeline.Settings(style=STYLE, seed=SEED)``, and the motion is kept in
``DIR/NAME/MODE_STYLE_SEED/TRACK.npy`` (a dance already there is not made again). Then, for every
run found under DIR (any label), over its dances:

- ``named``: the share of dances the style classifier (``eval.style_classifier``, trained on the
  real clips of the retrieval bank) names as the requested style (for ``any``: the share named
  each style), and the same per 4-s window;
- ``FID_k``: Fréchet distance between the kinetic features (66, ``eval.features``) of the dances'
  4-s windows and those of the real clips of the requested style (bank clips, their mirrors and the
  held-out clips), all z-scored by the mean and standard deviation of every real window (one scale
  for every style: z-scoring by one style's own windows made the distances swing by 5x between two
  seeds of the same model, through features that hardly vary in that style); for ``any`` against
  each style's and against all real clips;
- ``gain``: BAS − chance (``eval.metrics.bas``) against the song's beats from our features (what the
  model and beat sync hear), and against the track's annotated beats;
- ``FSR``: the foot-skating ratio (``eval.metrics.foot_skating``), mean over dances; for context,
  the same over the bank's real clips of each style (``real FSR``, printed first).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

MODES = ("network", "default")


def parse_runs(text: str) -> list[tuple[str, str, int]]:
    from dataset.styles import check_style

    runs = []
    for item in text.split(","):
        mode, style, seed = item.strip().split(":")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
        runs.append((mode, check_style(style), int(seed)))
    return runs


def make_dances(checkpoint, label: str, out: Path, runs, tracks, seconds: float) -> None:
    """Dance every (run, track) not already under out/label."""
    import time

    import pipeline

    generator = None
    for mode, style, seed in runs:
        folder = out / label / f"{mode}_{style}_{seed}"
        folder.mkdir(parents=True, exist_ok=True)
        for audio, _ in tracks:
            path = folder / f"{audio.name.split('_')[0]}.npy"
            if path.is_file():
                continue
            generator = generator or pipeline.DanceGenerator(checkpoint)
            network = mode == "network"
            settings = pipeline.Settings(duration=seconds, seed=seed, style=style, retrieval=not network,
                                         beat_sync=not network, foot_lock=not network)
            t0 = time.perf_counter()
            dance = generator.dance(audio, settings)
            np.save(path, np.concatenate([dance.vector, dance.features], axis=1).astype(np.float32))
            print(f"{label} {mode} {style} seed {seed} {path.stem}: {time.perf_counter() - t0:.1f} s", flush=True)


def _real_windows(clips) -> dict[str, np.ndarray]:
    """Kinetic features (the first 66 of the classifier's) of real windows per style and 'all'."""
    out = {}
    for c in clips:
        out.setdefault(c.style, []).append(c.features[:, :66])
    real = {k: np.expm1(np.concatenate(v)) for k, v in out.items()}
    real["all"] = np.concatenate(list(real.values()))
    return real


def _scaled(pred: np.ndarray, gt: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pred and gt z-scored by the mean and standard deviation of ``reference`` (every real window)."""
    mean, std = reference.mean(axis=0), reference.std(axis=0) + 1e-8
    return (pred - mean) / std, (gt - mean) / std


def score_run(folder: Path, classifier, real: dict, rest_joints, beat_files: dict) -> dict:
    """The numbers of one run folder (see the module docstring)."""
    from eval.metrics import bas, foot_skating, frechet_distance
    from eval.style_classifier import CLASSES, window_features
    from eval.heldout_songs import annotated_beats
    from sync.beats import body_joints, music_beats_from_features

    mode, style, seed = folder.name.split("_")
    named, window_named, kinetic, gains, gains_annotated, fsr = [], [], [], [], [], []
    for path in sorted(folder.glob("*.npy")):
        data = np.load(path)
        vector, features = data[:, :319], data[:, 319:]
        joints = body_joints(vector, rest_joints)
        f = window_features(joints, rest_joints)
        named.append(classifier.dance_style(f))
        window_named += classifier.window_styles(f)
        kinetic.append(np.expm1(f[:, :66]))
        a = bas(joints, music_beats_from_features(features))
        gains.append(a.bas - a.chance)
        if path.stem in beat_files:
            b = bas(joints, annotated_beats(beat_files[path.stem]))
            gains_annotated.append(b.bas - b.chance)
        fsr.append(foot_skating(joints).ratio)
    kinetic = np.concatenate(kinetic)
    result = {"mode": mode, "style": style, "seed": int(seed), "dances": len(named),
              "named": {s: float(np.mean([n == s for n in named])) for s in CLASSES},
              "named_windows": {s: float(np.mean([n == s for n in window_named])) for s in CLASSES},
              "gain": float(np.mean(gains)),
              "gain_annotated": float(np.mean(gains_annotated)) if gains_annotated else None,
              "fsr": float(np.nanmean(fsr)),
              "fid_k": {k: frechet_distance(*_scaled(kinetic, v, real["all"])) for k, v in real.items()}}
    return result


def bank_fsr(bank_path, rest_joints) -> dict[str, float]:
    """Mean foot-skating ratio of the bank's real clips per style."""
    from eval.metrics import foot_skating
    from retrieval.bank import Bank
    from sync.beats import body_joints

    bank = Bank.load(bank_path)
    per = {}
    for style, motion in zip(bank.styles, bank.motions):
        per.setdefault(style, []).append(foot_skating(body_joints(motion, rest_joints)).ratio)
    return {k: float(np.nanmean(v)) for k, v in sorted(per.items())}


def main(argv=None) -> int:
    import argparse

    from body.body_model import BodyModel
    from dataset.open_corpus import DEFAULT_MUSIC_DIR, HELD_OUT_TRACKS
    from eval.heldout_songs import find_track
    from eval.style_classifier import StyleClassifier, bank_clips, held_out_clips
    from retrieval.bank import DEFAULT_BANK

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--label", default=None, help="name of this checkpoint's runs under --out")
    p.add_argument("--out", required=True)
    p.add_argument("--runs", default="", help="MODE:STYLE:SEED,… to dance (none: only score what is there)")
    p.add_argument("--tracks", default=",".join(HELD_OUT_TRACKS))
    p.add_argument("--music_dir", default=str(DEFAULT_MUSIC_DIR))
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--corpus", default="data/open_corpus6", help="held-out real clips (its test pairs)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    out = Path(a.out)
    tracks = [find_track(Path(a.music_dir), t.strip()) for t in a.tracks.split(",") if t.strip()]
    if a.runs:
        if not a.label:
            p.error("--runs needs --label")
        make_dances(a.checkpoint, a.label, out, parse_runs(a.runs), tracks, a.seconds)
    rest = BodyModel().rest_joints.numpy()
    train = bank_clips(DEFAULT_BANK, rest)
    classifier = StyleClassifier().fit(train)
    real = _real_windows(train + held_out_clips(a.corpus, rest))
    beat_files = {audio.name.split("_")[0]: beats for audio, beats in tracks}
    real_fsr = bank_fsr(DEFAULT_BANK, rest)
    print("real FSR (bank clips): " + ", ".join(f"{k} {v:.3f}" for k, v in real_fsr.items()))
    results = {}
    for label_dir in sorted(d for d in out.iterdir() if d.is_dir()):
        for run in sorted(d for d in label_dir.iterdir() if d.is_dir() and any(d.glob("*.npy"))):
            r = score_run(run, classifier, real, rest, beat_files)
            results[f"{label_dir.name}/{run.name}"] = r
            fid = r["fid_k"]
            target = r["style"] if r["style"] != "any" else "all"
            print(f"{label_dir.name:>4} {run.name:18} n={r['dances']}  named " +
                  " ".join(f"{s[:3]} {v:4.0%}" for s, v in r["named"].items()) +
                  f"  (windows {r['named_windows'].get(r['style'], float('nan')):.0%})"
                  f"  FID_k[{target}] {fid[target]:6.2f}  FID_k mod/ind/sal {fid['modern']:.2f}/"
                  f"{fid['indian']:.2f}/{fid['salsa']:.2f}  gain {r['gain']:+.3f}"
                  f" (annotated {r['gain_annotated']:+.3f})  FSR {r['fsr']:.3f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"real_fsr": real_fsr, "runs": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
