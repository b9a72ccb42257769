"""The ``zetl-nb`` command: ``demo``, ``serve``, ``sql``, ``status`` and ``lab``."""

from __future__ import annotations

import argparse
import datetime
import decimal
import json
import math
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterable
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
    """Each integration: state, lag, last sync, errors and its tables' states (read-only)."""
    from .lab import Lab, default_home

    home = Path(args.home).expanduser() if args.home else default_home()
    if not (home / "control.db").exists():
        print(f"zetl-nb status: no Lab home at {home} (open one with zetl_nb.Lab(home)).")
        return 2
    with Lab(home=home, read_only=True) as lab:
        integrations = lab.control.integrations()
        lag = {
            (row["integration_arn"], row["table_name"]): row
            for row in lab.monitor.lag().to_pylist()
        }
        print(f"Lab home {lab.home}: {len(integrations)} integration(s)")
        for integ in integrations:
            print(
                f"  {integ.name:<28} {integ.api:<4} {integ.status:<16} "
                f"{_lag_text(lag.get((integ.arn, None)))}"
            )
            print(f"    {integ.source_arn} -> {integ.target_arn}")
            for err in integ.errors:
                print(f"    ! {err['ErrorCode']}: {err['ErrorMessage']}")
            for table in sorted(lab.table_states(integ.arn), key=lambda t: t["TableName"]):
                row = lag.get((integ.arn, table["TableName"]))
                reason = f" ({table['Reason']})" if table.get("Reason") else ""
                print(f"    {table['TableName']:<32} {table['State']:<16} {_lag_text(row)}{reason}")
    return 0


def _lag_text(row: dict[str, Any] | None) -> str:
    """``lag 0.4 s, last sync 12:00:01Z`` from a ``zetl_lag`` row ('' if there is none)."""
    if row is None:
        return ""
    parts = []
    if row.get("lag_seconds") is not None:
        parts.append(f"lag {row['lag_seconds']:.1f} s")
    if row.get("last_synced") is not None:
        parts.append(f"last sync {row['last_synced']:%Y-%m-%d %H:%M:%S}Z")
    return ", ".join(parts)


SQL_HELP = """\
Run one query against a Lab home and print the result.

The home is always attached read-only, whether or not a notebook or `zetl-nb serve` is using it:
a query never starts the engine, so it never resumes replication or starts embedded services, and
it never holds the home's lock (the writing process keeps running undisturbed). The query sees
every table at the latest snapshot the writer committed. Statements that change the Lab, such as
Redshift's CREATE DATABASE ... FROM INTEGRATION, need the writing Lab (a notebook, lab.sql).

Replicated tables are <database>.<table>; the monitoring views (svv_integration, ...) have
Redshift's names. --format table (default) aligns columns for reading; csv has a header row and
empty fields for NULL; json is an array of objects with exact numbers (decimals are not rounded
through floating point), timestamps in ISO 8601 and binary values as \\x-prefixed hex.

Exit status: 0 the query ran; 1 it failed (DuckDB's message is printed); 2 the home cannot be
opened or the command line is wrong.

examples:
  zetl-nb sql "SELECT count(*) FROM lakehouse.orders"
  zetl-nb sql --format csv "SELECT * FROM lakehouse.orders" > orders.csv
  zetl-nb sql --dialect redshift "SELECT TOP 5 * FROM svv_integration"
  echo "SELECT 42" | zetl-nb sql -
"""


def _sql(args: argparse.Namespace) -> int:
    from .core.errors import ZetlError
    from .lab import Lab, default_home

    home = Path(args.home).expanduser() if args.home else default_home()
    if not (home / "control.db").exists():
        raise ZetlError(
            f"{home.resolve()} is not a Lab home (it has no control.db). Pass --home DIR or set "
            "ZETL_HOME to the home your notebook or `zetl-nb serve` uses."
        )
    query = sys.stdin.read() if args.query == "-" else args.query
    if not query.strip():
        print("zetl-nb sql: error: the query is empty", file=sys.stderr)
        return 2
    with Lab(home=home, read_only=True) as lab:
        try:
            result = lab.sql(query, dialect=args.dialect)
        except Exception as exc:
            if not isinstance(exc, ZetlError) and not _is_duckdb_error(exc):
                raise
            print(f"zetl-nb sql: error: {exc}", file=sys.stderr)
            return 1
    try:
        _print_result(result.to_arrow(), args.format, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # `zetl-nb sql ... | head`: the reader left, which is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _is_duckdb_error(exc: BaseException) -> bool:
    import duckdb

    return isinstance(exc, duckdb.Error)


def _print_result(table: Any, fmt: str, out: Any) -> None:
    """Write a ``pyarrow.Table`` as an aligned text table, CSV or JSON."""
    names = list(table.column_names)
    columns = [
        [_maps_as_dicts(v, column.type) for v in column.to_pylist()] for column in table.columns
    ]
    rows = list(zip(*columns, strict=True)) if columns else []
    if fmt == "json":
        objects = (_json_object(zip(names, row, strict=True)) for row in rows)
        out.write("[" + ",\n".join(objects) + "]\n")
    elif fmt == "csv":
        import csv

        writer = csv.writer(out, lineterminator="\n")
        if names:
            writer.writerow(names)
        writer.writerows([["" if v is None else _text(v) for v in row] for row in rows])
    else:
        out.write(_text_table(names, [table.schema.field(i).type for i in range(len(names))], rows))


def _maps_as_dicts(value: Any, arrow_type: Any) -> Any:
    """``value`` with Arrow maps (lists of key/value pairs in Python) as dicts, at any depth."""
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_map(arrow_type):
        key, item = arrow_type.key_type, arrow_type.item_type
        return {_text(_maps_as_dicts(k, key)): _maps_as_dicts(v, item) for k, v in value}
    if pa.types.is_struct(arrow_type):
        fields = {
            arrow_type.field(i).name: arrow_type.field(i).type for i in range(arrow_type.num_fields)
        }
        return {k: _maps_as_dicts(v, fields[k]) for k, v in value.items()}
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    ):
        return [_maps_as_dicts(v, arrow_type.value_type) for v in value]
    return value


def _text(value: Any) -> str:
    """A value as text: ISO 8601 for dates and times, hex for binary, JSON for nested values."""
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return _json_value(value)
    return str(value)


def _json_value(value: Any) -> str:
    """One value as JSON: decimals as exact numbers, NaN and infinities as null, else as text."""
    if isinstance(value, float):
        return json.dumps(value) if math.isfinite(value) else "null"
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else "null"
    if isinstance(value, dict):
        return _json_object(value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json_value(v) for v in value) + "]"
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    return json.dumps(_text(value))


def _json_object(items: Iterable[tuple[Any, Any]]) -> str:
    return "{" + ", ".join(f"{json.dumps(str(k))}: {_json_value(v)}" for k, v in items) + "}"


def _text_table(names: list[str], types: list[Any], rows: list[tuple[Any, ...]]) -> str:
    """psql-style: a header, a rule, one line per row (numbers right-aligned), a row count."""
    import pyarrow as pa

    if not names:
        return "OK\n"
    cells = [
        [("NULL" if v is None else _text(v)).replace("\n", "\\n").replace("\t", "\\t") for v in row]
        for row in rows
    ]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in types
    ]
    lines = [(" " + " | ".join(n.center(w) for n, w in zip(names, widths, strict=True))).rstrip()]
    lines.append("-" + "-+-".join("-" * w for w in widths) + "-")
    for row in cells:
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append((" " + " | ".join(parts)).rstrip())
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines) + "\n"


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(home=args.home, as_json=args.json)


LAB_HELP = """\
Start JupyterLab on the lab notebooks, bound to 127.0.0.1 only.

Which notebooks: --notebooks DIR if given; else, in a source checkout (an editable install), the
checkout's notebooks/ in place; else (an installed wheel) the packaged notebooks, copied into
<home>/notebooks the first time — later runs keep the copies and your edits there.

The home (--home, default $ZETL_HOME or ./.zetl) is created, and ZETL_HOME is set for the server
and its kernels, so `zetl_nb.Lab()` in a notebook opens it. (The lab notebooks make temporary
homes of their own, so they can be re-run from scratch.) Ctrl-C stops JupyterLab.
"""


def _lab(args: argparse.Namespace) -> int:
    """Exec JupyterLab on the notebooks with ``ZETL_HOME`` set; loopback only."""
    from .lab import default_home

    home = (Path(args.home).expanduser() if args.home else default_home()).resolve()
    home.mkdir(parents=True, exist_ok=True)
    notebooks = _lab_notebooks(args.notebooks, home)
    env = dict(os.environ, ZETL_HOME=str(home))
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={notebooks}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={args.port}",
    ]
    if args.no_browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:  # containers and CI run as root; Jupyter refuses root unless told
        cmd.append("--allow-root")
    print(f"zetl-nb lab: notebooks {notebooks}, home {home} (ZETL_HOME)", flush=True)
    os.execve(cmd[0], cmd, env)
    return 0  # pragma: no cover - execve does not return


def _lab_notebooks(explicit: str | None, home: Path) -> Path:
    """The folder JupyterLab serves: ``explicit``, a checkout's ``notebooks/``, or the packaged
    notebooks copied into ``<home>/notebooks`` (existing copies are kept, never overwritten)."""
    from .core.errors import ZetlError

    if explicit is not None:
        folder = Path(explicit).expanduser().resolve()
        if not folder.is_dir():
            raise ZetlError(f"--notebooks {explicit}: no such directory.")
        return folder
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "notebooks").is_dir():
        return checkout / "notebooks"
    packaged = _packaged_notebooks()
    if not packaged:
        raise ZetlError(
            "this installation has no lab notebooks (reinstall zetl_nb, or pass --notebooks DIR)."
        )
    folder = home / "notebooks"
    folder.mkdir(exist_ok=True)
    for source in packaged:
        if not (folder / source.name).exists():
            shutil.copyfile(source, folder / source.name)
    return folder


def _packaged_notebooks() -> list[Path]:
    """The lab notebooks an installed wheel carries (``share/zetl_nb/notebooks/*.ipynb``, the
    ``data-files`` of pyproject.toml), wherever the install scheme put them."""
    from importlib import metadata

    try:
        dist = metadata.distribution("zetl_nb")
    except metadata.PackageNotFoundError:
        return []
    found = []
    for entry in dist.files or []:
        if entry.name.endswith(".ipynb") and "share/zetl_nb/notebooks" in entry.as_posix():
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                found.append(path)
    return sorted(found, key=lambda p: p.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zetl-nb", description="zero-ETL in a notebook: local AWS zero-ETL integrations."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "demo", help="run the sentiment-analysis lab end to end on embedded defaults"
    )
    p.add_argument("--home", help="a new Lab home to use (default: a fresh temporary directory)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the summary as one JSON object on stdout (progress goes to stderr)",
    )
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
    p = sub.add_parser(
        "sql",
        help="run a query against a Lab home (read-only) and print the result",
        description=SQL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("query", help='the SQL to run ("-" reads it from standard input)')
    p.add_argument("--home", help="Lab home (default $ZETL_HOME or ./.zetl)")
    p.add_argument(
        "--format", choices=["table", "csv", "json"], default="table", help="output format"
    )
    p.add_argument(
        "--dialect",
        choices=["duckdb", "redshift"],
        default="duckdb",
        help="SQL dialect: DuckDB's (default) or Redshift's, transpiled to DuckDB",
    )
    p.set_defaults(func=_sql)
    p = sub.add_parser(
        "status", help="integrations: state, lag, last sync, errors, table states (read-only)"
    )
    p.add_argument("--home", help="Lab home (default $ZETL_HOME or ./.zetl)")
    p.set_defaults(func=_status)
    p = sub.add_parser(
        "lab",
        help="start JupyterLab on the lab notebooks (127.0.0.1 only)",
        description=LAB_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--home", help="Lab home, set as ZETL_HOME (default $ZETL_HOME or ./.zetl)")
    p.add_argument("--port", type=int, default=8888, help="port (0: any free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--notebooks", help="serve this folder instead of the lab notebooks")
    p.set_defaults(func=_lab)
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
