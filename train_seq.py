"""Train the model: ``accelerate launch train_seq.py --batch_size 32 --epochs 200`` (or plain python)."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    from args import train_parser

    args = train_parser().parse_args(argv)
    from model.checkpoint import CheckpointError
    from model.training import TrainOptions, train

    opts = TrainOptions(**{k: v for k, v in vars(args).items() if k in TrainOptions.__dataclass_fields__})
    try:
        path = train(opts)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"last checkpoint: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
