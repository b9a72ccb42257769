"""``Lab``: the one entry point. It owns the home, the embedded services, the control plane,
the engine and (later) the query layer.

>>> import zetl_nb
>>> with zetl_nb.Lab(home="/tmp/my-lab") as lab:          # doctest: +SKIP
...     glue = lab.client("glue")
...     glue.create_database(DatabaseInput={"Name": "lakehouse", "LocationUri": "/tmp/wh"})
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .config import LabConfig, load_config
from .core.arn import rds_cluster_arn
from .core.errors import AwsError, ConfigError, HomeLockedError, ReadOnlyLabError, ZetlError
from .core.events import EventBus
from .core.prerequisites import Fix
from .core.states import IntegrationState
from .engine.control import ControlPlane
from .engine.scheduler import Engine, replicated
from .engine.store import ControlStore, Integration
from .target.catalog import LocalCatalog

_SERVICES_FILE = "services.json"
_SUPPORTED_DB_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")


def default_home() -> Path:
    """``$ZETL_HOME`` if set, else ``./.zetl``."""
    return Path(os.environ.get("ZETL_HOME") or ".zetl")


class Lab:
    """A local zero-ETL environment rooted at a home directory.

    Args:
        home: the home directory (default ``$ZETL_HOME`` or ``./.zetl``); created if missing.
        read_only: attach to a home another process writes, to query it.
        **settings: overrides of ``zetl.toml`` / ``ZETL_*`` (see :class:`LabConfig`).
    """

    def __init__(
        self, home: str | Path | None = None, read_only: bool = False, **settings: Any
    ) -> None:
        self.home = Path(home if home is not None else default_home()).expanduser().resolve()
        self.read_only = read_only
        self._closed = False
        self._lock_file: Any = None
        self._services_lock = threading.Lock()
        self._dynamodb: Any = None
        self._postgres: Any = None
        if read_only:
            if not (self.home / "control.db").exists():
                raise ZetlError(
                    f"{self.home} is not a Lab home (no control.db); open it "
                    "once without read_only=True to create it."
                )
        else:
            self.home.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
        self.config: LabConfig = load_config(self.home, **settings)
        self.bus = EventBus()
        self.store = ControlStore(self.home / "control.db", read_only=read_only)
        self.catalog = LocalCatalog(self.home)
        self.control = ControlPlane(
            self.store,
            self.catalog,
            self.bus,
            self.config.account_id,
            self.config.region,
            dynamodb=lambda: self.client("dynamodb"),
            retry_window_seconds=self.config.retry_window_days * 86400,
        )
        self.engine = Engine(self.control, self.config.prerequisite_recheck_seconds)
        from .monitor import Monitor

        self.monitor = Monitor(self.home, self.control, self.engine, read_only=read_only)
        self._clients: dict[str, Any] = {}
        self._query: Any = None
        if not read_only:
            self._register_databases()
            self.engine.make_source = self._make_source
            self.engine.start()
        atexit.register(self.close)

    # -- lifecycle ----------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        path = self.home / "lab.lock"
        fh = open(path, "a+")  # noqa: SIM115 - held open for the Lab's lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise HomeLockedError(
                f"Lab home {self.home} is in use by PID {holder}. One process writes a home at "
                "a time: close that Lab (or stop `zetl-nb serve`), use another home, or attach "
                "read-only with Lab(home, read_only=True) to query it."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_file = fh

    def close(self) -> None:
        """Stop the engine and the embedded services; release the home. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.engine.stop()
        self.monitor.close()
        if self._query is not None:
            self._query.close()
        for svc in (self._dynamodb, self._postgres):
            if svc is not None:
                svc.stop()
        if not self.read_only:
            (self.home / _SERVICES_FILE).unlink(missing_ok=True)
        self.store.close()
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
        atexit.unregister(self.close)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "writer"
        return f"<zetl_nb.Lab {self.home} ({mode}, {self.config.account_id}/{self.config.region})>"

    # -- clients ------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A client for ``service`` with boto3's methods.

        ``glue`` and ``rds`` run in-process against this Lab; ``dynamodb``, ``dynamodbstreams``
        (and any other AWS service moto serves) are real boto3 clients on the Lab's endpoint.
        """
        if service in self._clients:
            return self._clients[service]
        if service in ("glue", "rds"):
            from .api.client import LocalClient

            client: Any = LocalClient(self.service(service))
        elif self.config.dynamodb_endpoint == "aws":  # real AWS: boto3's endpoints, credentials
            import boto3

            client = boto3.client(service, region_name=self.config.region)  # type: ignore[call-overload]
        else:
            import boto3

            client = boto3.client(  # type: ignore[call-overload]
                service,
                endpoint_url=self.dynamodb_url,
                region_name=self.config.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        self._clients[service] = client
        return client

    def service(self, name: str) -> Any:
        """The server-side implementation of ``glue`` or ``rds`` (used by ``zetl-nb serve``)."""
        from .api.client import ReadOnlyService

        impl: Any
        if name == "glue":
            from .api.glue import GlueService

            impl = GlueService(self.control)
        elif name == "rds":
            from .api.rds import RdsService

            impl = RdsService(self.control)
        else:
            raise ZetlError(f"zetl_nb implements the glue and rds services, not '{name}'.")
        return ReadOnlyService(impl) if self.read_only else impl

    # -- embedded services --------------------------------------------------------------------
    @property
    def dynamodb_url(self) -> str:
        """The DynamoDB endpoint: configured, the writer's (read-only), or the embedded one."""
        if self.config.dynamodb_endpoint == "aws":
            return f"https://dynamodb.{self.config.region}.amazonaws.com"
        if self.config.dynamodb_endpoint:
            return self.config.dynamodb_endpoint
        if self.read_only:
            url = self._services().get("dynamodb")
            if not url:
                raise ReadOnlyLabError("the writing Lab has not started its DynamoDB endpoint.")
            return str(url)
        with self._services_lock:
            if self._dynamodb is None:
                from .services.dynamodb import DynamoDBEndpoint

                endpoint = DynamoDBEndpoint(
                    self.home / "dynamodb", self.config.account_id, self.config.region
                )
                endpoint.start()
                self._dynamodb = endpoint
                self._record_service("dynamodb", endpoint.url)
            return str(self._dynamodb.url)

    @property
    def postgres(self) -> Any:
        """The embedded PostgreSQL (``wal_level=logical``), started on first use."""
        if self.read_only:
            raise ReadOnlyLabError("a read-only Lab does not start services.")
        with self._services_lock:
            if self._postgres is None:
                from .services.postgres import EmbeddedPostgres

                pg = EmbeddedPostgres(self.home / "postgres" / "data")
                pg.start()
                self._postgres = pg
                self._record_service("postgres", pg.url)
            return self._postgres

    def _record_service(self, name: str, url: str) -> None:
        path = self.home / _SERVICES_FILE
        doc = self._services()
        doc[name] = url
        doc["pid"] = os.getpid()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)

    def _services(self) -> dict[str, Any]:
        path = self.home / _SERVICES_FILE
        return dict(json.loads(path.read_text())) if path.exists() else {}

    # -- relational databases -----------------------------------------------------------------
    def _register_databases(self) -> None:
        if self.config.embedded_postgres:
            name = self.config.embedded_cluster
            self.store.put_doc(
                "databases",
                name,
                {
                    "Name": name,
                    "Url": "embedded:postgres",
                    "Engine": "postgres",
                    "Embedded": True,
                    "Arn": rds_cluster_arn(self.config.region, self.config.account_id, name),
                },
            )
        for name, url in self.config.databases.items():
            self.add_database(name, url)

    def add_database(self, name: str, url: str) -> str:
        """Register a MySQL/MariaDB or PostgreSQL database by URL as an RDS cluster; its ARN.

        >>> lab.add_database("shop", "mysql://root@127.0.0.1:3306/shop")   # doctest: +SKIP
        'arn:aws:rds:us-east-1:123456789012:cluster:shop'
        """
        from .engine.control import _NAME

        if not _NAME.fullmatch(name) or len(name) > 63:
            raise ConfigError(
                f"database name '{name}' must be 1-63 letters, digits and hyphens, "
                "starting with a letter (it becomes the RDS cluster identifier)."
            )
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme.split("+")[0] not in _SUPPORTED_DB_SCHEMES:
            raise ConfigError(
                f"database URL '{url}' must start with postgresql://, mysql:// or "
                "mariadb://, e.g. mysql://root@127.0.0.1:3306/shop."
            )
        engine = "postgres" if scheme.startswith("postgres") else "mysql"
        arn = rds_cluster_arn(self.config.region, self.config.account_id, name)
        self.store.put_doc(
            "databases",
            name,
            {"Name": name, "Url": url, "Engine": engine, "Embedded": False, "Arn": arn},
        )
        return arn

    def databases(self) -> dict[str, str]:
        """Registered relational databases: name → RDS cluster ARN."""
        return {name: doc["Arn"] for name, doc in self.store.docs("databases")}

    def database_url(self, name: str) -> str:
        """The connection URL of a registered database (starting the embedded one if needed)."""
        doc = self.store.get_doc("databases", name)
        if doc is None:
            raise ZetlError(f"no database '{name}' is registered; see lab.databases().")
        return str(self.postgres.url) if doc.get("Embedded") else str(doc["Url"])

    # -- lifecycle helpers --------------------------------------------------------------------
    def integration(self, identifier: str) -> Integration:
        """An integration record by ARN, id or name."""
        return self.control.find(identifier)

    def wait_for_status(
        self, identifier: str, status: str | Iterable[str], timeout: float = 30.0
    ) -> Integration:
        """Block until the integration reaches ``status`` (Glue or RDS spelling); returns it.

        ``deleted`` waits for the integration to disappear.
        """
        wanted = {status} if isinstance(status, str) else set(status)
        wanted = {
            IntegrationState(s.upper() if s.lower() != "deleted" else "deleted").value
            for s in wanted
        }
        deadline = time.monotonic() + timeout
        arn = self._resolve(identifier)
        while True:
            self.engine.kick()
            integ = self.store.get_integration(arn)
            current = integ.status if integ else IntegrationState.DELETED.value
            if current in wanted:
                return integ or self._deleted_stub(arn)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"integration {arn} is {current}, not {sorted(wanted)}, after {timeout:g} s"
                )
            time.sleep(0.02)

    def _resolve(self, identifier: str) -> str:
        """The ARN of a live integration, or of one that has been deleted (from history)."""
        try:
            return self.control.find(identifier).arn
        except AwsError:
            for change in reversed(self.store.history()):
                if identifier in (change.arn, change.name, change.arn.rsplit(":", 1)[-1]):
                    return change.arn
            raise

    def _deleted_stub(self, arn: str) -> Integration:
        last = self.store.history(arn)[-1]
        return Integration(
            arn=arn,
            api="glue",
            name=last.name,
            source_arn="",
            target_arn="",
            create_time=last.at,
            status=IntegrationState.DELETED.value,
        )

    def fix_prerequisites(self, identifier: str, apply: bool = False) -> list[dict[str, Any]]:
        """ "Fix it for me": what would change to meet every prerequisite; ``apply=True`` does it.

        Returns the planned changes (service, operation, parameters, description). Without
        ``apply`` nothing is changed, so you can read the plan first, as in the console.
        """
        integ = self.control.find(identifier)
        problems = self.control.problems(integ)
        runner = self.engine.runners.get(integ.arn)
        if runner is not None:  # source settings found by replication (wal_level, binlog, ...)
            problems += runner.problems
        fixes: list[Fix] = [p.fix for p in problems if p.fix is not None]
        if apply:
            if self.read_only:
                raise ReadOnlyLabError("a read-only Lab cannot apply fixes.")
            for fix in fixes:
                fix.apply()
            self.engine.kick()
        return [f.as_dict() for f in fixes]

    # -- replication --------------------------------------------------------------------------
    def _make_source(self, integ: Integration) -> Any:
        from .engine.resources import parse_source

        ref = parse_source(integ.source_arn, self.config.account_id, self.config.region)
        if ref.kind == "dynamodb":
            return self._dynamodb_source(integ, ref.name)
        doc = self.store.get_doc("databases", ref.name)
        if doc is None:
            from .sources.base import SourceError

            raise SourceError("SourceNotFound", f"database '{ref.name}' is not registered")
        url = self.database_url(ref.name)
        ident = "zetl_" + integ.integration_id.replace("-", "")
        if doc["Engine"] == "postgres":
            from .sources.postgres import PostgresSource

            return PostgresSource(url, slot_name=ident, publication_name=ident)
        from .sources.mysql import MySQLSource

        server_id = 100_000 + int(integ.integration_id.replace("-", "")[:6], 16) % 1_000_000
        return MySQLSource(url, server_id=server_id)

    def _dynamodb_source(self, integ: Any, table: str) -> Any:
        """The DynamoDB source of ``integ``, shaped by its table's UnnestSpec."""
        from .sources.dynamodb_source import (
            MAX_EXPORT_SECONDS,
            MIN_EXPORT_SECONDS,
            DynamoDBSource,
        )
        from .transform import unnest

        def config() -> tuple[str, Any]:
            props = self.store.get_table_properties(integ.target_arn, table) or {}
            target = props.get("TargetTableConfig", {})
            return target.get("UnnestSpec") or "FULL", target.get("PartitionSpec")

        minutes = float(integ.refresh_interval or 15)
        return DynamoDBSource(
            self.client("dynamodb"),
            self.client("dynamodbstreams"),
            integ.source_arn,
            self.config.account_id,
            self.config.region,
            to_arrow=lambda items, keys, mode: unnest.unnest(items, keys, mode),
            merge=unnest.merge_schemas,
            conform=unnest.conform,
            refresh_seconds=minutes * 60 / self.config.time_scale,
            config=config,
            day_seconds=86400 / self.config.time_scale if minutes >= 1440 else None,
            exporter=self._dynamodb_exporter(integ),
            min_export_seconds=MIN_EXPORT_SECONDS / self.config.time_scale,
            max_export_seconds=MAX_EXPORT_SECONDS / self.config.time_scale,
        )

    def _dynamodb_exporter(self, integ: Any) -> Any:
        """The export path of ``integ``'s DynamoDB source, or None (Scan and Streams).

        With ``dynamodb_export_bucket`` set (real AWS only), an ``S3Exporter`` that downloads
        below ``<home>/dynamodb-exports/<integration id>``. This is also the hook for tests:
        replace it on a Lab to give DynamoDB sources another ``Exporter``.
        """
        if not self.config.dynamodb_export_bucket:
            return None
        from .sources.dynamodb_exporter import S3Exporter

        return S3Exporter(
            self.client("dynamodb"),
            self.client("s3"),
            self.config.dynamodb_export_bucket,
            self.config.dynamodb_export_prefix,
            self.home / "dynamodb-exports" / integ.integration_id,
        )

    def refresh_now(self, identifier: str) -> None:
        """Trigger a refresh at once; a following :meth:`wait` sees its result."""
        arn = self._resolve(identifier)
        runner = self.engine.runners.get(arn)
        if runner is not None:
            runner.refresh_now()
        self.engine.recheck(arn)

    def wait(self, identifier: str, synced: bool = True, timeout: float = 60.0) -> dict[str, Any]:
        """Block until every replicated table has applied the source position current now.

        Tables in Failed are excluded and reported. Returns a summary; raises ``TimeoutError``
        (with the integration's status and errors) on timeout, and ``ZetlError`` if the
        integration is FAILED or deleted.
        """
        arn = self._resolve(identifier)
        deadline = time.monotonic() + timeout
        target: int | None = None
        while True:
            integ = self.store.get_integration(arn)
            if integ is None:
                raise ZetlError(f"integration {arn} was deleted")
            if integ.status == IntegrationState.FAILED.value:
                raise ZetlError(f"integration {integ.name} is FAILED: {integ.errors}")
            runner = self.engine.runners.get(arn)
            active = integ.status == IntegrationState.ACTIVE.value
            # An integration whose data the engine moves is synced only once its runner caught up.
            done = active and (not synced or not replicated(integ))
            if runner is not None and active and synced:
                if target is None and runner.loaded.is_set():
                    try:
                        target = runner.current_seq()
                    except ZetlError:
                        target = None
                caught_up = target is not None and runner.caught_up_seq >= target
                # ContinuousSync=false: the one load is all there is to wait for.
                done = (runner.finished or caught_up) and not runner.syncing
            if done:
                return self._summary(integ)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"integration {integ.name} is {integ.status} and not synced "
                    f"after {timeout:g} s; errors: {integ.errors}"
                )
            self.engine.kick()
            time.sleep(0.05)

    def _summary(self, integ: Integration) -> dict[str, Any]:
        tables = self.table_states(integ.arn)
        return {
            "IntegrationArn": integ.arn,
            "IntegrationName": integ.name,
            "Status": integ.status,
            "Tables": [t for t in tables if t["State"] != "Failed"],
            "FailedTables": [t for t in tables if t["State"] == "Failed"],
        }

    def table_states(self, identifier: str) -> list[dict[str, Any]]:
        """The replicated tables of an integration: target name, state, reason."""
        arn = self._resolve(identifier)
        return [doc for key, doc in self.store.docs("table_states") if key.startswith(arn + "|")]

    # -- query layer (zetl_nb/query) ------------------------------------------------------------
    def sql(self, query: str, params: Any = None, dialect: str = "duckdb") -> Any:
        """Run SQL over the latest snapshot of every table (``<database>.<table>``).

        Returns a fetched ``Result`` (``fetchall()``, ``description``, ``to_arrow()``, ``pl()``,
        ``df()``). The monitoring views (``svv_integration``, ...) are plain views.
        ``dialect="redshift"`` transpiles Redshift SQL with sqlglot and accepts
        ``CREATE DATABASE <name> FROM INTEGRATION '<integration_id>'`` and Redshift ML's
        ``CREATE EXTERNAL MODEL``. ``llm_sentiment(text)`` and ``llm_complete(prompt)`` call
        the Lab's ``llm_model``; ``result.llm`` tallies their calls, cache hits, tokens and cost.

        >>> lab.sql("SELECT TOP 3 * FROM lakehouse.orders", dialect="redshift")  # doctest: +SKIP
        """
        return self._query_engine().sql(query, params, dialect)

    def _query_engine(self) -> Any:
        with self._services_lock:  # one engine, even when two threads query first at once
            if self._query is None:
                self._query = self._new_query_engine()
        return self._query

    def _new_query_engine(self) -> Any:
        from .query.duck import QueryEngine

        return QueryEngine(
            self.catalog,
            system_tables=self._system_tables,
            control=self.control,
            home=self.home,
            read_only=self.read_only,
            on_database_created=self._database_created,
            llm_model=self.config.llm_model,
            llm_concurrency=self.config.llm_concurrency,
            llm_per_prompt=self.config.llm_per_prompt,
            memory_mb=self.config.query_memory_mb,
        )

    def _system_tables(self) -> Any:
        monitor = getattr(self, "monitor", None)
        if monitor is None or not hasattr(monitor, "system_tables"):
            return {}
        return monitor.system_tables()

    def _database_created(self, integration_id: str, name: str, source: str | None) -> None:
        monitor = getattr(self, "monitor", None)
        if monitor is not None and hasattr(monitor, "mark_database_created"):
            monitor.mark_database_created(integration_id, name, source)

    def duckdb(self) -> Any:
        """A DuckDB connection in which every replicated table is ``<database>.<table>``.

        Views follow new snapshots without reconnecting (they refresh before each statement).
        """
        return self._query_engine().connect()

    def table(self, name: str, as_of: Any = None) -> Any:
        """``name`` (``"<database>.<table>"``) as a ``Result``, at ``as_of``: a snapshot id, a
        datetime, an ISO-8601 string or epoch seconds (None: the latest snapshot).

        >>> lab.table("lakehouse.orders", as_of=datetime(2026, 11, 3, 14, 0)).pl()  # doctest: +SKIP
        """
        return self._query_engine().table(name, as_of)

    def snapshots(self, name: str) -> Any:
        """The readable snapshots of ``name`` (id, time, operation, record counts) as a Result."""
        return self._query_engine().snapshots(name)

    def diff(self, name: str, from_snapshot: Any, to_snapshot: Any = None, key: Any = None) -> Any:
        """Rows added and removed between two snapshots (ids or times, as for ``as_of``).

        A ``Result`` with ``_change_type`` (insert, delete, update_preimage, update_postimage),
        paired by ``key`` (default: the table's identifier fields).
        """
        return self._query_engine().diff(name, from_snapshot, to_snapshot, key)

    def polars(self, name: str, as_of: Any = None) -> Any:
        """A Polars ``LazyFrame`` over ``name`` (``pl.scan_iceberg``), optionally at ``as_of``."""
        return self._query_engine().polars(name, as_of)
