"""``python -m cove.simulator --host 127.0.0.1 --port 7431``: run the model simulator alone."""

from __future__ import annotations

import argparse
import os
import threading
import time

from cove.simulator.runner import serve


def _exit_with(parent: int) -> None:
    """End this process when the one that started it is gone (even killed with SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cove.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7431)
    parser.add_argument("--fd", type=int, help="serve on this inherited, already listening socket")
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the Cove server) is gone")
    args = parser.parse_args(argv)
    if args.parent_pid:
        threading.Thread(target=_exit_with, args=(args.parent_pid,), daemon=True).start()
    if args.fd is None:
        print(f"Cove model simulator on http://{args.host}:{args.port} (ANTHROPIC_BASE_URL)", flush=True)
    serve(args.host, args.port, fd=args.fd)


if __name__ == "__main__":
    main()
