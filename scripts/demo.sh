#!/usr/bin/env bash
# Quick start, part 1: install everything, then dance to the bundled demo song with the bundled default
# model → output/soldiers_joy_house_dance.mp4 (30 s, 1200×1200, with the song).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python generate_dance.py assets/music/soldiers_joy_house.mp3 --overwrite
echo "video: output/soldiers_joy_house_dance.mp4"
