"""The one place that picks the OpenGL platform and imports pyrender.

PyOpenGL reads ``PYOPENGL_PLATFORM`` once, when it is first imported, so the choice must be made
before anything imports pyrender or OpenGL. OSMesa (software, works everywhere) is preferred; EGL
(GPU or Mesa) is the fallback. ``DANCE_GL=osmesa|egl`` or the ``platform`` argument overrides.
"""
from __future__ import annotations

import ctypes.util
import os
import sys

import numpy as np

PLATFORMS = ("osmesa", "egl")


class RenderBackendError(RuntimeError):
    """No usable offscreen OpenGL platform."""


def _available(platform: str) -> bool:
    lib = {"osmesa": "OSMesa", "egl": "EGL"}[platform]
    return ctypes.util.find_library(lib) is not None


def choose_platform(requested: str | None = None) -> str:
    requested = requested or os.environ.get("DANCE_GL") or None
    if requested:
        requested = requested.lower()
        if requested not in PLATFORMS:
            raise RenderBackendError(f"unknown OpenGL platform '{requested}'; choose one of {PLATFORMS}")
        return requested
    for p in PLATFORMS:
        if _available(p):
            return p
    raise RenderBackendError("no offscreen OpenGL found: install OSMesa (apt-get install libosmesa6) "
                             "or EGL (apt-get install libegl1)")


def import_pyrender(platform: str | None = None):
    """Set the platform (once per process) and return the pyrender module."""
    wanted = choose_platform(platform)
    current = os.environ.get("PYOPENGL_PLATFORM")
    if "OpenGL" in sys.modules and current and current != wanted:
        if platform:  # an explicit request that can no longer be honoured
            raise RenderBackendError(f"OpenGL already initialised with '{current}'; cannot switch to "
                                     f"'{wanted}' in the same process")
        wanted = current
    os.environ["PYOPENGL_PLATFORM"] = wanted
    if not hasattr(np, "infty"):  # pyrender 0.1.45 still uses the alias numpy 2 removed
        np.infty = np.inf
    if not _available(wanted):
        raise RenderBackendError(f"OpenGL platform '{wanted}' is not installed (libOSMesa / libEGL missing)")
    import pyrender
    return pyrender
