#!/usr/bin/env bash
# Quick start, part 1: install everything, then render the bundled dance clip with the demo song
# to output/demo_dance.mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python render.py --modir assets/motion/demo_dance.npy --music assets/music/soldiers_joy_house.mp3 \
  --out_dir output --overwrite
echo "video: output/demo_dance.mp4"
