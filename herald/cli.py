"""`herald` command line. Each subcommand is one process of the deployment.

    herald dev                    the whole stack on one machine (Temporal + UI, sandbox, worker, API)
    herald api                    the HTTP API
    herald worker                 a Temporal worker (workflows and activities)
    herald migrate                apply database migrations
    herald sandbox                the provider emulator
    herald keys create --workspace NAME [--label L]   a new API key; the secret is printed once
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError


def _settings():  # noqa: ANN202
    from herald.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            print(f"herald: configuration error: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_api(args: argparse.Namespace) -> int:
    from api.app import create_app
    from herald.serve import serve

    settings = _settings()
    _logging(settings.log_level)
    serve(create_app(settings), settings.host, settings.api_port,
          log_level=settings.log_level.lower(), access_log=args.access_log)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.main import run_worker

    settings = _settings()
    _logging(settings.log_level)
    asyncio.run(run_worker(settings, args.role))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from store.migrate import upgrade

    settings = _settings()
    upgrade(settings.db_url)
    print("herald: database is at the latest schema")
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from herald.serve import serve
    from sandbox.app import create_app

    settings = _settings()
    serve(create_app(), settings.host, settings.sandbox_port, log_level="warning", access_log=False)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from store import keys as key_store
    from store.db import Database

    settings = _settings()
    db = Database(settings.db_url)
    with db.session() as s:
        ws = key_store.ensure_workspace(s, args.workspace)
        key, secret = key_store.create_key(s, ws.id, args.label)
        s.commit()
    print(f"workspace: {ws.name} ({ws.id})")
    print(f"key id:    {key.id}")
    print(f"secret:    {secret}")
    print("The secret is shown only now; store it somewhere safe.")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from herald.dev import run_dev

    return run_dev(_settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="herald", description="Durable social-media publishing on Temporal.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run Temporal (with UI), the sandbox, a worker and the API").set_defaults(func=cmd_dev)
    api = sub.add_parser("api", help="run the HTTP API")
    api.add_argument("--access-log", action="store_true", help="log every request")
    api.set_defaults(func=cmd_api)
    worker = sub.add_parser("worker", help="run a Temporal worker")
    worker.add_argument("--role", choices=("all", "workflows", "publisher", "media"), default="all",
                        help="all (default): everything; workflows: workflows, store writes and media; "
                             "publisher: only the provider calls; media: only downloads, probing "
                             "and transcodes")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("sandbox", help="run the provider sandbox").set_defaults(func=cmd_sandbox)
    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create an API key (prints the secret once)")
    create.add_argument("--workspace", required=True, help="workspace name (created if missing)")
    create.add_argument("--label", default=None, help="a label for the key")
    create.set_defaults(func=cmd_keys_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
