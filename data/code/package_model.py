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
import dataclasses
import json
import shlex
from pathlib import Path

from model.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _command(options: dict) -> str:
    flags = " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in options.items()
                     if v is not None and k not in ("progress", "checkpoint") and not isinstance(v, bool)
                     and not (k == "model_size" and options.get("init")))     # --init takes the file's size
    switches = "".join(f" --{k}" for k, v in options.items() if v is True and k != "progress")   # e.g. --balance_styles
    return f"OMP_NUM_THREADS=1 python train_seq.py {flags}{switches}"


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


SUMMARY_EVERY = 200     # steps per row of the training summary
LOSSES = ("loss", "x0", "velocity", "fk", "foot", "speed", "beat")   # the log columns summarised


def summarize_logs(logs: list[tuple[str, Path]]) -> list[dict]:
    """Training logs (stage name, train_seq.py log.csv; a log with a 'stage' column keeps its own
    stage names) → one row per stage and SUMMARY_EVERY steps: mean losses, learning rate, minutes
    (the sum of the time between consecutive logged steps; a resumed run's first step counts from
    its start)."""
    import csv

    rows, last = [], {}
    for name, path in logs:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                stage = r.get("stage") or name
                step, seconds = int(r["step"]), float(r["seconds"])
                prev = last.get(stage)
                elapsed = seconds - prev if prev is not None and seconds >= prev else seconds
                last[stage] = seconds
                key = (stage, (step - 1) // SUMMARY_EVERY)
                if not rows or rows[-1]["key"] != key:
                    rows.append({"key": key, "stage": stage, "first_step": step, "n": 0, "minutes": 0.0,
                                 **{k: 0.0 for k in LOSSES}})
                row = rows[-1]
                row["last_step"], row["lr"], row["n"] = step, float(r["lr"]), row["n"] + 1
                row["minutes"] += elapsed / 60
                for k in LOSSES:
                    row[k] += float(r.get(k) or "nan")     # older logs lack the speed and beat columns
    out = []
    for row in rows:
        n = row.pop("n")
        row.pop("key")
        out.append({**row, **{k: "" if row[k] != row[k] else f"{row[k] / n:.5g}" for k in LOSSES},
                     "minutes": f"{row['minutes']:.2f}"})
    return out


def write_summary(rows: list[dict], path: Path) -> None:
    import csv

    fields = ["stage", "first_step", "last_step", *LOSSES, "lr", "minutes"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", default=str(ROOT / "assets" / "checkpoints" / "default.pt"))
    p.add_argument("--data_dir", default=None, help="the training data folder, for the manifest")
    p.add_argument("--log", action="append", default=[], metavar="STAGE=CSV",
                   help="a training log to summarise into OUT_training_summary.csv (repeat, oldest first)")
    p.add_argument("--recipe", default=None, help="the script that reproduces every stage (named in the card)")
    p.add_argument("--guidance", type=float, default=None, metavar="G",
                   help="the classifier-free guidance weight the packaged model samples with by default "
                        "(default: the training run's, 2)")
    a = p.parse_args(argv)
    loaded = load_checkpoint(a.checkpoint)            # EMA weights, eval mode
    payload = loaded.payload
    out = Path(a.out)
    diffusion = loaded.diffusion if a.guidance is None else dataclasses.replace(loaded.diffusion, guidance=a.guidance)
    save_checkpoint(out, loaded.model, ema=loaded.model, optimizer=None, diffusion=diffusion,
                    epoch=payload.get("epoch"), step=payload.get("step"),
                    train_options=payload.get("train_options"))     # so a later stage's card can follow it
    options = payload.get("train_options") or {}
    card = {
        "config": loaded.config.to_dict(),
        "diffusion": diffusion.to_dict(),
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
    if a.recipe:
        card["recipe"] = a.recipe
    if a.log:
        logs = [(item.split("=", 1)[0], Path(item.split("=", 1)[1])) for item in a.log]
        rows = summarize_logs(logs)
        summary = out.with_name(out.stem + "_training_summary.csv")
        write_summary(rows, summary)
        card["training_minutes"] = {stage: round(sum(float(r["minutes"]) for r in rows if r["stage"] == stage), 1)
                                    for stage in dict.fromkeys(r["stage"] for r in rows)}
    out.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
