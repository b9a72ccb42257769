"""The ``zetl-nb`` command: ``demo``, ``serve``, ``status`` and ``lab``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from .api.server import LocalEndpoint
    from .lab import Lab

    host = "0.0.0.0" if args.allow_remote else "127.0.0.1"
    lab = Lab(home=args.home)
    try:
        _ = lab.dynamodb_url  # the gateway forwards to it, so start it before the first call
        endpoint = LocalEndpoint(lab, host=host, port=args.port)
    except BaseException:
        lab.close()
        raise

    def stop(signum: int, frame: Any) -> None:
        # shutdown() waits for serve_forever to return, so it must run off the main thread;
        # it also works when the signal lands before serve_forever has started.
        threading.Thread(target=endpoint.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        print(
            f"zetl-nb serve: {endpoint.url}  (home {lab.home}, account "
            f"{lab.config.account_id}, region {lab.config.region})",
            flush=True,
        )
        print(
            f'  boto3.client("glue", endpoint_url="{endpoint.url}", region_name='
            f'"{lab.config.region}")   # Ctrl-C stops',
            flush=True,
        )
        endpoint.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        endpoint.close()
        lab.close()
        print("zetl-nb serve: stopped", flush=True)
    return 0


def _status(args: argparse.Namespace) -> int:
    from .lab import Lab

    home = Path(args.home) if args.home else None
    try:
        lab = Lab(home=home)
    except Exception as exc:
        from .core.errors import HomeLockedError

        if not isinstance(exc, HomeLockedError):
            raise
        lab = Lab(home=home, read_only=True)
    with lab:
        rows = [
            (i.name, i.api, i.status, i.source_arn, i.target_arn)
            for i in lab.control.integrations()
        ]
        print(f"Lab home {lab.home}: {len(rows)} integration(s)")
        for name, api, status, src, tgt in rows:
            print(f"  {name:<28} {api:<4} {status:<16} {src} -> {tgt}")
        integ_errors = [(i.name, e) for i in lab.control.integrations() for e in i.errors]
        for name, err in integ_errors:
            print(f"  ! {name}: {err['ErrorCode']}: {err['ErrorMessage']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(home=args.home)


def _jupyter(args: argparse.Namespace) -> int:
    notebooks = Path(args.notebooks).resolve()
    env = dict(os.environ)
    if args.home:
        env["ZETL_HOME"] = str(Path(args.home).resolve())
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--notebook-dir={notebooks}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
        "--no-browser",
    ]
    os.execvpe(cmd[0], cmd, env)
    return 0  # pragma: no cover - execvpe does not return


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zetl-nb", description="zero-ETL in a notebook: local AWS zero-ETL integrations."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the demo end to end on embedded defaults")
    p.add_argument("--home", help="Lab home to use (default: a fresh temporary directory)")
    p.set_defaults(func=_demo)
    p = sub.add_parser("serve", help="serve the local AWS endpoint (Glue, RDS, DynamoDB, ...)")
    p.add_argument("--home", help="Lab home (default $ZETL_HOME or ./.zetl)")
    p.add_argument("--port", type=int, default=4566, help="port (0 picks a free one)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on every interface instead of 127.0.0.1 only",
    )
    p.set_defaults(func=_serve)
    p = sub.add_parser("status", help="list integrations and their states")
    p.add_argument("--home", help="Lab home (default $ZETL_HOME or ./.zetl)")
    p.set_defaults(func=_status)
    p = sub.add_parser("lab", help="start JupyterLab on the lab notebooks (loopback only)")
    p.add_argument("--home", help="Lab home the notebooks use (sets ZETL_HOME)")
    p.add_argument("--notebooks", default="notebooks", help="notebook directory")
    p.add_argument("--port", type=int, default=8888)
    p.set_defaults(func=_jupyter)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .core.errors import ZetlError

    try:
        result: int = args.func(args)
    except ZetlError as exc:
        print(f"zetl-nb: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
