#!/usr/bin/env bash
# Installs everything the project needs, idempotently: system libraries (through apt when run as
# root, otherwise a message naming them), a virtual environment in .venv, and the Python packages.
#   bash scripts/install.sh          runtime
#   bash scripts/install.sh --test   runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

# --- system libraries: ffmpeg (video), OSMesa (offscreen OpenGL) --------------------------------
# with --test also Chromium and its WebDriver, for the web page's browser tests (tests/test_app.py), and
# Blender with the numpy its glTF importer needs, to open the exports (tests/test_blender.py; about 1 min)
APT_PKGS=(ffmpeg libosmesa6 libgl1)
((WITH_TEST)) && APT_PKGS+=(chromium chromium-driver blender python3-numpy)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "[install] apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[install] missing system packages: ${missing[*]}" >&2
    echo "[install] install them (e.g. sudo apt-get install ${missing[*]}) and run this again" >&2
    exit 1
  fi
fi

# --- Python environment --------------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
  echo "[install] creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
stamp=$VENV/.installed-$(cat requirements.txt requirements-test.txt scripts/install.sh | sha1sum | cut -c1-12)-$WITH_TEST
if [[ ! -f $stamp ]]; then
  echo "[install] python packages"
  "${PIP[@]}" torch==2.13.0
  "${PIP[@]}" -r requirements.txt
  "${PIP[@]}" --no-deps pyrender==0.1.45
  ((WITH_TEST)) && "${PIP[@]}" -r requirements-test.txt
  rm -f $VENV/.installed-*
  touch "$stamp"
fi
# --- the project itself, editable (pyproject.toml): its modules import from anywhere ----------------
if [[ ! -f $VENV/.installed-project ]] || [[ pyproject.toml -nt $VENV/.installed-project ]]; then
  "$VENV/bin/python" -c "import setuptools" 2>/dev/null || "${PIP[@]}" "setuptools>=64"
  "${PIP[@]}" --no-deps --no-build-isolation -e .
  touch $VENV/.installed-project
fi
# --- librosa's numba code, compiled once here (about 35 s on 2 cores) so that a user's first dance does
# not pay for it: computing the demo song's features fills numba's cache, which lands beside librosa in
# .venv (__pycache__; where that is read-only, numba uses ~/.cache/numba; NUMBA_CACHE_DIR overrides).
if [[ ! -f $VENV/.numba-cached ]] || [[ $stamp -nt $VENV/.numba-cached ]]; then
  echo "[install] compiling librosa's numba code once (about 40 s)"
  "$VENV/bin/python" -c "from audio.music import song_features; song_features('assets/music/soldiers_joy_house.mp3')"
  touch $VENV/.numba-cached
fi
echo "[install] ready: $VENV"
