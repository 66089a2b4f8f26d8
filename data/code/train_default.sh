#!/usr/bin/env bash
# Reproduces assets/checkpoints/default.pt from the repository, every stage in order (about
# 6 h of training on a 2-core CPU, plus ~10 min for the corpora; per-stage minutes are in
# assets/checkpoints/default.json, "training_minutes"). A stage starts afresh: its runs/sN is removed.
#   bash data/code/train_default.sh            # all stages
#   STAGES="7 package" bash data/code/train_default.sh   # only some (each needs the previous one's output)
#   STAGES="8" bash data/code/train_default.sh           # the style-token stage (issue 22; not shipped, see docs/RESULTS.md)
# Runs are exactly resumable: rerun a stage with --checkpoint runs/sN/latest.pt added to continue it.
# Thread count matters for bit-identical results (we trained with one thread per process).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PY=${PYTHON:-.venv/bin/python}
STAGES=${STAGES:-"data 1 2 3 4 5 6 7 package"}   # stage 8 (style token) is not in the default model: run it by name
COMMON=(--batch_size 16 --lr 6e-4 --min_std 0.02 --save_every 1)

for stage in $STAGES; do
  [[ $stage =~ ^[1-8]$ ]] && rm -rf "runs/s$stage"
  case $stage in
    data)   # the open corpus (2 tracks per clip, stages 1-3) and the 6-tracks-per-clip build (stage 4)
      $PY data/code/build_open_corpus.py --out data/open_corpus --overwrite
      $PY data/code/build_open_corpus.py --out data/open_corpus6 --tracks_per_clip 6 --overwrite ;;
    1)      # the reference design on raw features, 8 epochs (4,688 steps); built before our additions,
            # which --model_size cpu now includes: this stage is run with them switched off
      $PY train_seq.py --data_dir data/open_corpus --out_dir runs/s1 --model_size cpu_reference "${COMMON[@]}" \
          --epochs 8 --seed 0 ;;
    2)      # music normalisation folded in: 4 epochs (2,344 steps)
      $PY train_seq.py --data_dir data/open_corpus --out_dir runs/s2 --init runs/s1/train-8.pt --init_add music_norm \
          "${COMMON[@]}" --epochs 4 --seed 1 ;;
    3)      # the frame-aligned condition added at zero: 7 epochs (4,102 steps)
      $PY train_seq.py --data_dir data/open_corpus --out_dir runs/s3 --init runs/s2/train-4.pt --init_add cond_frames \
          "${COMMON[@]}" --epochs 7 --seed 2
      $PY data/code/package_model.py --checkpoint runs/s3/train-7.pt --out runs/s3/packaged.pt ;;
    4)      # the beat phase added at zero, 3x more music pairings; from stage 3's packaged (EMA) weights
      $PY train_seq.py --data_dir data/open_corpus6 --out_dir runs/s4 --init runs/s3/packaged.pt --init_add beat_phase \
          "${COMMON[@]}" --epochs 40 --max_steps "${S4_STEPS:-2800}" --warmup_steps 200 --seed 3
      $PY data/code/package_model.py --checkpoint runs/s4/latest.pt --out runs/s4/packaged.pt ;;
    5)      # the speed-profile loss (weight 0.05), from stage 4's packaged (EMA) weights, half the learning rate
      $PY train_seq.py --data_dir data/open_corpus6 --out_dir runs/s5 --init runs/s4/packaged.pt --init_add "" \
          "${COMMON[@]}" --lr 3e-4 --epochs 40 --max_steps 1600 --warmup_steps 100 --seed 4 --speed_loss 0.05 ;;
    6)      # the speed-profile loss at 0.2, from stage 5's last weights (model and EMA)
      $PY train_seq.py --data_dir data/open_corpus6 --out_dir runs/s6 --init runs/s5/latest.pt --init_add "" \
          "${COMMON[@]}" --lr 3e-4 --epochs 40 --max_steps 800 --warmup_steps 100 --seed 5 --speed_loss 0.2
      $PY data/code/package_model.py --checkpoint runs/s6/latest.pt --out runs/s6/packaged.pt ;;
    7)      # the beat loss (weight 5, margin 0.1) beside the speed loss, from stage 6's packaged (EMA) weights
      $PY train_seq.py --data_dir data/open_corpus6 --out_dir runs/s7 --init runs/s6/packaged.pt --init_add "" \
          "${COMMON[@]}" --lr 3e-4 --epochs 40 --max_steps 600 --warmup_steps 100 --seed 6 --speed_loss 0.2 \
          --beat_loss 5 --beat_margin 0.1
      $PY data/code/package_model.py --checkpoint runs/s7/latest.pt --out runs/s7/packaged.pt ;;
    8)      # NOT in the default model (it made the network alone worse: docs/RESULTS.md, "Style control"):
            # the style token (issue 22) added at zero, from stage 7's packaged (EMA) weights, stage 7's losses;
            # each window's style (its clip's) is dropped to the null style ('any') with probability 0.25, and
            # windows are drawn with the three styles equally likely (the corpus is 79% salsa by windows)
      $PY train_seq.py --data_dir data/open_corpus6 --out_dir runs/s8 --init runs/s7/packaged.pt --init_add style \
          "${COMMON[@]}" --lr 3e-4 --epochs 40 --max_steps "${S8_STEPS:-600}" --warmup_steps 100 --seed 7 \
          --speed_loss 0.2 --beat_loss 5 --beat_margin 0.1 --style_drop 0.25 --balance_styles
      $PY data/code/package_model.py --checkpoint runs/s8/latest.pt --out runs/s8/packaged.pt ;;
    package)
      $PY data/code/package_model.py --checkpoint runs/s7/latest.pt --out assets/checkpoints/default.pt \
          --data_dir data/open_corpus6 --recipe data/code/train_default.sh \
          --log 1-raw-features=runs/s1/log.csv --log 2-music-norm=runs/s2/log.csv \
          --log 3-frame-condition=runs/s3/log.csv --log 4-beat-phase=runs/s4/log.csv \
          --log 5-speed-loss-0.05=runs/s5/log.csv --log 6-speed-loss-0.2=runs/s6/log.csv \
          --log 7-beat-loss=runs/s7/log.csv ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
