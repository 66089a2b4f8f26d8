"""Package a training checkpoint as a small inference checkpoint (EMA weights only), with a JSON card.

    python data/code/package_model.py --checkpoint runs/cpu/latest.pt --out assets/checkpoints/default.pt \\
        --data_dir /path/to/open_corpus

Writes OUT (official layout: ``ema_state_dict``; ``model_state_dict`` is the same tensors, stored once;
no optimiser state; ``normalizer`` None; our ``config``) and OUT with ``.json``: the model config, the
training options, steps and epochs, the training command, the earlier training stages it grew from
(followed through ``--init`` and resumed ``--checkpoint`` files while they exist) and the data manifest
(split lists and the corpus summary) when ``--data_dir`` is given.
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _command(options: dict) -> str:
    flags = " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in options.items()
                     if v is not None and k not in ("progress", "checkpoint") and not isinstance(v, bool)
                     and not (k == "model_size" and options.get("init")))     # --init takes the file's size
    return f"OMP_NUM_THREADS=1 python train_seq.py {flags}"


def lineage(payload: dict) -> list[dict]:
    """The training stages behind a checkpoint, oldest first: each stage's end (epoch, step), its
    options and command, found by following 'init' (a new run from weights) and 'checkpoint' (a
    resumed run) in the training options, as far as those files still exist."""
    stages, seen = [], set()
    options = payload.get("train_options") or {}
    current = {"epoch": payload.get("epoch"), "step": payload.get("step")}
    while True:
        stages.append({**current, "config": payload.get("config"), "train_options": options,
                       "training_command": _command(options)})
        source = options.get("init") or options.get("checkpoint")
        if not source or source in seen or not Path(source).is_file():
            break
        seen.add(source)
        payload = read_checkpoint(source)
        options = payload.get("train_options") or {}
        current = {"epoch": payload.get("epoch"), "step": payload.get("step"), "file": source}
    return stages[::-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default=str(ROOT / "assets" / "checkpoints" / "default.pt"))
    p.add_argument("--data_dir", default=None, help="the training data folder, for the manifest")
    a = p.parse_args(argv)
    loaded = load_checkpoint(a.checkpoint)            # EMA weights, eval mode
    payload = loaded.payload
    out = Path(a.out)
    save_checkpoint(out, loaded.model, ema=loaded.model, optimizer=None, diffusion=loaded.diffusion,
                    epoch=payload.get("epoch"), step=payload.get("step"))
    options = payload.get("train_options") or {}
    card = {
        "config": loaded.config.to_dict(),
        "diffusion": loaded.diffusion.to_dict(),
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "weights": "EMA",
        "epoch": payload.get("epoch"), "step": payload.get("step"),
        "train_options": options,
        "training_command": _command(options),
        "training_stages": lineage(payload),
    }
    if a.data_dir:
        data = Path(a.data_dir)
        for name in ("splits.json", "summary.json"):
            if (data / name).is_file():
                card[name.removesuffix(".json")] = json.loads((data / name).read_text())
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
