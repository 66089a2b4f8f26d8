"""Which style does a dance look like? A small classifier on movement features of real clips (issue 22).

    python -m eval.style_classifier [--bank assets/retrieval/bank.npz] [--corpus data/open_corpus6]

It is the judge of ``--style``: trained on real motion capture only, it is checked on real clips it
never saw before it is asked about generated dances (``eval/style_report.py``).

- **Windows.** A dance is cut into 4-s windows (``WINDOW`` frames, every ``HOP``); each window's
  features are the evaluator's: the 66 kinetic features (``eval.features.kinetic_features``,
  log(1 + x), as they span four orders of magnitude) and the 32 geometric ("manual") features
  (``eval.features.geometric_features``). Both ignore where the dancer stands and which way they
  face.
- **Training data.** The retrieval bank's clips (``assets/retrieval/bank.npz``: the open corpus's
  training clips, unwarped, held-out clips left out) and their mirror images, with their styles.
- **Model.** Standardised features, multinomial logistic regression with balanced class weights
  (the bank has 26 salsa, 18 modern and 7 Indian clips).
- **A dance's style**: the style of highest mean log-probability over its windows.
- **Checks.** Leave-one-clip-out cross-validation on the bank (a clip and its mirror leave
  together), and the held-out clips 05_20, 94_15, 60_15 and 61_15 (the open corpus's test pairs,
  warped onto held-out songs), which no model or bank ever saw.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset.styles import STYLES

WINDOW = 120          # frames (4 s at 30 fps)
HOP = 60              # frames between window starts
CLASSES = STYLES[1:]  # modern, indian, salsa (``any`` is not a style a dance can have)


def window_starts(n_frames: int, window: int = WINDOW, hop: int = HOP) -> list[int]:
    """Starts of the windows of a dance; a dance shorter than a window gives one window of all of it."""
    if n_frames < window:
        return [0]
    return list(range(0, n_frames - window + 1, hop))


def window_features(joints: np.ndarray, rest_joints, window: int = WINDOW, hop: int = HOP) -> np.ndarray:
    """(T, 22, 3) body joints → (n windows, 98): log(1 + kinetic features) and geometric features
    of each 4-s window."""
    from eval.features import geometric_relations, kinetic_features

    joints = np.asarray(joints, np.float64)
    relations = geometric_relations(joints, rest_joints)          # (T − 1, 32), frames 1 … T−1
    rows = []
    for s in window_starts(len(joints), window, hop):
        part = joints[s:s + window]
        kinetic = np.log1p(kinetic_features(part))
        geometric = relations[s:s + len(part) - 1].mean(axis=0)
        rows.append(np.concatenate([kinetic, geometric]))
    return np.asarray(rows)


def dance_features(vector: np.ndarray, rest_joints) -> np.ndarray:
    """Window features of a (T, 315) or (T, 319) motion vector."""
    from sync.beats import body_joints

    return window_features(body_joints(vector, rest_joints), rest_joints)


@dataclass
class Clip:
    """A real dance for training or checking the classifier: name, style, CMU clip id, features."""

    name: str
    style: str
    clip_id: str
    features: np.ndarray


def bank_clips(bank_path, rest_joints, mirrors: bool = True) -> list[Clip]:
    """The retrieval bank's clips (and their mirror images) as classifier clips."""
    from retrieval.bank import Bank, mirrored

    bank = Bank.load(bank_path)
    out = []
    for name, style, motion in zip(bank.names, bank.styles, bank.motions):
        out.append(Clip(name, style, name[:5], dance_features(motion, rest_joints)))
        if mirrors:
            out.append(Clip(f"{name}_mirror", style, name[:5], dance_features(mirrored(motion), rest_joints)))
    return out


def held_out_clips(corpus_dir, rest_joints) -> list[Clip]:
    """The open corpus's test pairs (held-out clips warped onto held-out songs) as classifier clips."""
    from dataset.finedance import load_song, split_names
    from dataset.styles import style_of_clip

    corpus_dir = Path(corpus_dir)
    out = []
    for name in split_names(corpus_dir, "test"):
        label_path = corpus_dir / "label_json" / f"{name}.json"
        label = json.loads(label_path.read_text()) if label_path.is_file() else {}
        song = load_song(corpus_dir, name, rest_joints)
        out.append(Clip(name, style_of_clip(name, label), name[:5], dance_features(song.motion, rest_joints)))
    return out


class StyleClassifier:
    """Logistic regression on standardised window features; classes ``CLASSES``."""

    def __init__(self, c: float = 0.1):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(StandardScaler(),
                                   LogisticRegression(C=c, class_weight="balanced", max_iter=5000))

    def fit(self, clips: list[Clip]) -> "StyleClassifier":
        x = np.concatenate([c.features for c in clips])
        y = np.concatenate([[CLASSES.index(c.style)] * len(c.features) for c in clips])
        self.model.fit(x, y)
        return self

    def window_log_probs(self, features: np.ndarray) -> np.ndarray:
        """(n, 98) window features → (n, 3) log-probabilities of CLASSES."""
        out = np.full((len(features), len(CLASSES)), -np.inf)
        out[:, self.model.classes_] = self.model.predict_log_proba(features)
        return out

    def window_styles(self, features: np.ndarray) -> list[str]:
        return [CLASSES[i] for i in self.window_log_probs(features).argmax(axis=1)]

    def dance_style(self, features: np.ndarray) -> str:
        """The style of highest mean log-probability over a dance's windows."""
        return CLASSES[int(self.window_log_probs(features).mean(axis=0).argmax())]


def accuracy(classifier: StyleClassifier, clips: list[Clip]) -> dict[str, float]:
    """Share of windows and of whole clips whose style the classifier names correctly."""
    windows = [s == c.style for c in clips for s in classifier.window_styles(c.features)]
    whole = [classifier.dance_style(c.features) == c.style for c in clips]
    return {"windows": float(np.mean(windows)), "clips": float(np.mean(whole)), "n_windows": len(windows),
            "n_clips": len(whole)}


def leave_one_clip_out(clips: list[Clip]) -> dict[str, float]:
    """Accuracy with each CMU clip (and its mirror) classified by a classifier trained on the others."""
    windows, whole = [], []
    for clip_id in sorted({c.clip_id for c in clips}):
        test = [c for c in clips if c.clip_id == clip_id]
        classifier = StyleClassifier().fit([c for c in clips if c.clip_id != clip_id])
        windows += [s == c.style for c in test for s in classifier.window_styles(c.features)]
        whole += [classifier.dance_style(c.features) == c.style for c in test]
    return {"windows": float(np.mean(windows)), "clips": float(np.mean(whole)), "n_windows": len(windows),
            "n_clips": len(whole)}


def chance(clips: list[Clip]) -> float:
    """Accuracy of always naming the most common style (per window)."""
    counts = {}
    for c in clips:
        counts[c.style] = counts.get(c.style, 0) + len(c.features)
    return max(counts.values()) / sum(counts.values())


def main(argv=None) -> int:
    import argparse

    from body.body_model import BodyModel
    from retrieval.bank import DEFAULT_BANK

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bank", default=str(DEFAULT_BANK), help="training clips (a retrieval bank)")
    p.add_argument("--corpus", default="data/open_corpus6", help="corpus whose test pairs are the held-out check")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers here")
    a = p.parse_args(argv)
    rest = BodyModel().rest_joints.numpy()
    train = bank_clips(a.bank, rest)
    held = held_out_clips(a.corpus, rest)
    cv = leave_one_clip_out(train)
    classifier = StyleClassifier().fit(train)
    out = {"train_clips": len(train), "cross_validation": cv, "chance_train": chance(train),
           "held_out": accuracy(classifier, held), "chance_held_out": chance(held),
           "held_out_dances": {c.name: classifier.dance_style(c.features) for c in held}}
    print(f"leave-one-clip-out on {len(train)} bank clips (with mirrors): windows {cv['windows']:.1%}, "
          f"clips {cv['clips']:.1%} (chance {out['chance_train']:.1%})")
    h = out["held_out"]
    print(f"held-out clips ({h['n_clips']} test pairs): windows {h['windows']:.1%}, clips {h['clips']:.1%} "
          f"(chance {out['chance_held_out']:.1%})")
    for name, style in out["held_out_dances"].items():
        print(f"  {name:24} → {style}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
