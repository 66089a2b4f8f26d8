"""Gradio page: ``python app.py``. Not available yet (it arrives with the product issue)."""
import sys

if __name__ == "__main__":
    print("app.py: not available yet — the web page arrives once generation works. "
          "Render saved motion files with: python render.py --modir DIR", file=sys.stderr)
    sys.exit(2)
