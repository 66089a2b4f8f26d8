"""Every command-line option of the project, grouped by purpose, in one place.

Each entry point builds its parser from the groups it needs, so an option means the same thing
(same name, default and help) everywhere.
"""
from __future__ import annotations

import argparse


def _add_body(p: argparse.ArgumentParser):
    g = p.add_argument_group("body")
    g.add_argument("--body_model", default=None, metavar="PATH",
                   help="SMPL-X .npz file or folder with SMPLX_NEUTRAL.npz (default: "
                        "assets/smpl_model/smplx/SMPLX_NEUTRAL.npz if present, else our free body)")


def _add_render(p: argparse.ArgumentParser):
    g = p.add_argument_group("rendering")
    g.add_argument("--mode", choices=("smplx", "skeleton"), default="smplx",
                   help="full body mesh, or a fast stick-figure preview")
    g.add_argument("--gl", choices=("osmesa", "egl"), default=None,
                   help="offscreen OpenGL platform (default: OSMesa if installed, else EGL)")
    g.add_argument("--overwrite", action="store_true", help="replace existing videos")


def render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="render.py", description="Render saved motion files (.npy, .pkl, .npz) to 1200×1200 MP4 videos.")
    src = p.add_argument_group("input and output")
    src.add_argument("--modir", required=True, metavar="DIR_OR_FILE",
                     help="folder of motion files (or a single file)")
    src.add_argument("--out_dir", default=None, metavar="DIR",
                     help="where videos go (default: DIR/../videos)")
    src.add_argument("--music", default=None, metavar="FILE",
                     help="audio to mux into every video (default: a same-named audio file beside each motion)")
    _add_render(p)
    _add_body(p)
    return p


def placeholder_parser(prog: str, what: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=what)
