"""Render every motion file of a folder, one bad file never stopping the rest."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from atomic import refuse_existing
from body.body_model import BodyModel
from motion.formats import MOTION_EXTENSIONS, load_motion
from audio.music import AUDIO_EXTENSIONS
from renderer.render_motion import render_motion



@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def find_motion_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such file or folder")
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in MOTION_EXTENSIONS and p.is_file())
    if not files:
        raise FileNotFoundError(f"{source}: no motion files ({', '.join(MOTION_EXTENSIONS)}) in this folder")
    return files


def audio_beside(motion_file: Path) -> Path | None:
    """A same-named audio file next to the motion, if any."""
    for ext in AUDIO_EXTENSIONS:
        for cand in (motion_file.with_suffix(ext), motion_file.with_suffix(ext.upper())):
            if cand.is_file():
                return cand
    return None


def render_files(source: Path, out_dir: Path | None = None, music: Path | None = None, mode: str = "smplx",
                 body_model=None, platform: str | None = None, overwrite: bool = False,
                 log=print) -> BatchResult:
    """Render each motion in ``source`` (a folder or one file) to ``out_dir/NAME.mp4``.

    out_dir defaults to ``source/../videos`` (for a file: its folder's sibling ``videos``). An existing
    video is an error (FileExistsError, before anything is rendered) unless ``overwrite``.
    """
    files = find_motion_files(source)
    folder = source if source.is_dir() else source.parent
    out_dir = Path(out_dir) if out_dir else folder.parent / "videos"
    if music is not None and not Path(music).is_file():
        raise FileNotFoundError(f"{music}: audio file not found")
    refuse_existing([out_dir / f"{f.stem}.mp4" for f in files], overwrite)
    body = BodyModel(body_model)
    result = BatchResult()
    for i, f in enumerate(files, 1):
        out = out_dir / f"{f.stem}.mp4"
        try:
            motion = load_motion(f)
            render_motion(motion, out, body, audio=music or audio_beside(f), mode=mode, overwrite=overwrite,
                          platform=platform, desc=f"[{i}/{len(files)}] {f.name}")
            result.written.append(out)
            log(f"[{i}/{len(files)}] {out}")
        except (ValueError, RuntimeError, OSError) as e:
            result.failed.append((f, str(e)))
            log(f"[{i}/{len(files)}] FAILED {f}: {e}")
    return result
