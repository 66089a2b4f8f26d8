"""Web page: ``python app.py`` → http://127.0.0.1:7861 (upload or record a song, get a dance video)."""
from __future__ import annotations

import os
import signal
import sys

from args import app_parser


def main(argv=None) -> int:
    args = app_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)   # `kill` stops the server like Ctrl-C, cleaning up too
    try:
        return serve(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(args) -> int:
    """Serve the page until Ctrl-C or SIGTERM; first delete what killed servers left behind."""
    import pipeline
    import webapp

    removed = webapp.clean_leftovers()
    if removed:
        print(f"[app] deleted the temporary files of {len(removed)} server(s) that were killed: "
              f"{', '.join(p.name for p in removed)}", file=sys.stderr)
    try:
        defaults = pipeline.settings_from_args(args)
        service = webapp.DanceService(lambda: pipeline.DanceGenerator(args.checkpoint, device=args.device,
                                                                      body=args.body_model),
                                      keep=args.keep_requests, max_upload_mb=args.max_upload_mb,
                                      max_seconds=args.max_seconds).load()
    except (pipeline.GenerationError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    demo = None
    try:
        # Gradio's copies of uploads and results go inside this server's own folder too, so that a
        # killed server's are deleted with the rest at the next start. Set before the page is built.
        os.environ["GRADIO_TEMP_DIR"] = str(service.cache_dir())
        gen = service.generator
        print(f"[app] model {gen.checkpoint} ({gen.n_params / 1e6:.1f} M parameters) on {gen.device}; "
              f"body {gen.body.name}; temporary files in {service.root}", file=sys.stderr, flush=True)
        demo = webapp.build_app(service, defaults)
        demo.launch(server_name=args.host, server_port=args.port,   # until Ctrl-C
                    max_file_size=f"{int(args.max_upload_mb * webapp.MB)}b")
    except OSError as e:
        print(f"error: cannot serve on {args.host}:{args.port} ({e}); choose another --port", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if demo is not None:
            demo.close()    # Gradio deletes its copies of this server's uploads and results
        service.close()     # and we delete the request folders
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
