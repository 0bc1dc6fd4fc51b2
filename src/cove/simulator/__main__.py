"""``python -m cove.simulator --host 127.0.0.1 --port 7431``: run the model simulator alone."""

from __future__ import annotations

import argparse

from cove.simulator.runner import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cove.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7431)
    args = parser.parse_args(argv)
    print(f"Cove model simulator on http://{args.host}:{args.port} (ANTHROPIC_BASE_URL)", flush=True)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
