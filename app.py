"""Web page: ``python app.py`` → http://127.0.0.1:7861 (upload or record a song, get a dance video)."""
from __future__ import annotations

import signal
import sys

from args import app_parser


def main(argv=None) -> int:
    args = app_parser().parse_args(argv)
    import pipeline
    import webapp

    try:
        defaults = pipeline.settings_from_args(args)
        service = webapp.DanceService(lambda: pipeline.DanceGenerator(args.checkpoint, device=args.device,
                                                                      body=args.body_model),
                                      keep=args.keep_requests).load()
    except (pipeline.GenerationError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    gen = service.generator
    print(f"[app] model {gen.checkpoint} ({gen.n_params / 1e6:.1f} M parameters) on {gen.device}; "
          f"body {gen.body.name}", file=sys.stderr)

    demo = webapp.build_app(service, defaults)
    signal.signal(signal.SIGTERM, _interrupt)   # `kill` stops the server like Ctrl-C, cleaning up the same way
    try:
        demo.launch(server_name=args.host, server_port=args.port, max_file_size=webapp.MAX_UPLOAD)  # until Ctrl-C
    except OSError as e:
        print(f"error: cannot serve on {args.host}:{args.port} ({e}); choose another --port", file=sys.stderr)
        return 1
    finally:
        demo.close()        # Gradio deletes its copies of this server's uploads and results
        service.close()     # and we delete the request folders
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
