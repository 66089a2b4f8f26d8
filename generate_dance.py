"""Song → dance video: ``python generate_dance.py song.mp3``.

Not available yet: music-to-motion generation lands with the generation-core and product issues.
Until then, render saved motions with ``python render.py --modir DIR``.
"""
import sys

if __name__ == "__main__":
    print("generate_dance.py: not available yet — generation is still being built. "
          "Render saved motion files with: python render.py --modir DIR", file=sys.stderr)
    sys.exit(2)
