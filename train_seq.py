"""Training: ``accelerate launch train_seq.py``. Not available yet (it arrives with the training issue)."""
import sys

if __name__ == "__main__":
    print("train_seq.py: not available yet — training is still being built.", file=sys.stderr)
    sys.exit(2)
