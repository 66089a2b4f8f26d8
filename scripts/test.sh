#!/usr/bin/env bash
# Quick start, part 2: install everything the tests need, then run them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/python -m pytest -q tests "$@"
