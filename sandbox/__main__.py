"""``python -m sandbox [--host 127.0.0.1] [--port 8790] [--access-log]``: serve the provider sandbox."""

from __future__ import annotations

import argparse

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--access-log", action="store_true", help="log every request (slow under load)")
    args = parser.parse_args(argv)
    uvicorn.run("sandbox.app:app", host=args.host, port=args.port, access_log=args.access_log,
                log_level="warning")


if __name__ == "__main__":
    main()
