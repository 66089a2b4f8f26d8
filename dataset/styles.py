"""Dance styles (issue 22): the names the user picks from and the index the network's style token uses.

Index 0 is the null style: ``any`` (no preference, today's behaviour), every training clip whose style
we do not know, and what a model without a style input implicitly always dances. The other indices
are the open corpus's three CMU styles (subject 05 modern, 94 Indian, 60/61 salsa).

This module imports nothing heavy, so ``args.py`` can list the choices without slowing ``--help``.
"""
from __future__ import annotations

ANY = "any"
STYLES = (ANY, "modern", "indian", "salsa")   # position = the network's style index; 0 = null
N_STYLES = len(STYLES)
CMU_SUBJECT_STYLES = {"05": "modern", "94": "indian", "60": "salsa", "61": "salsa"}


class StyleError(ValueError):
    """An unknown style name. The message is one line listing the choices."""


def check_style(name: str | None) -> str:
    """``name`` lower-cased and checked (None means ``any``); raises StyleError listing the choices."""
    key = ANY if name is None else str(name).strip().lower()
    if key not in STYLES:
        raise StyleError(f"unknown style '{name}'; choose one of: {', '.join(STYLES)}")
    return key


def style_index(name: str | None) -> int:
    """The network's style index of a style name (0 for ``any``); raises StyleError."""
    return STYLES.index(check_style(name))


def style_of_clip(name: str, label: dict | None = None) -> str:
    """The style of a training clip: its label's ``style`` when it is one of ours, else from a CMU clip
    name ('05_02_modern__d06' → modern, by the subject number), else ``any`` (unknown)."""
    style = str((label or {}).get("style", "")).lower()
    if style in STYLES:
        return style
    return CMU_SUBJECT_STYLES.get(str(name)[:2], ANY) if str(name)[2:3] == "_" else ANY
