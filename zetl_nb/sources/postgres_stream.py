"""pgoutput change capture for :class:`~zetl_nb.sources.postgres.PostgresSource`.

A psycopg2 ``LogicalReplicationConnection`` streams the slot with ``proto_version 1`` and the
integration's publication; :class:`~zetl_nb.sources.pgoutput.PgOutputDecoder` decodes the messages
and :func:`~zetl_nb.sources.pgoutput.change_batches` turns whole transactions into Arrow batches.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.changes import TableSchema
from .base import SourceError
from .pgoutput import PgOutputDecoder, Relation, Transaction, change_batches, format_lsn, parse_lsn
from .postgres import position_lost, quote_ident

if TYPE_CHECKING:
    from ..core.changes import ChangeBatch
    from .postgres import PostgresSource

__all__ = ["PostgresStream"]

_FEEDBACK_SECONDS = 5.0  # status updates; the server's wal_sender_timeout defaults to 60 s
_LINGER_SECONDS, _GAP_SECONDS = 0.05, 0.005  # poll: gather more commits after the first
_RECONNECT_SECONDS = 10.0  # a dropped walsender may hold the slot "active" for a moment


class PostgresStream:
    """pgoutput change capture on a psycopg2 ``LogicalReplicationConnection``.

    Reads are non-blocking (``read_message`` with ``select`` waits). A transaction is buffered until
    its commit, across polls; ``poll`` returns whole transactions only. ``ack`` records the flush
    LSN, sent in the next status update (psycopg2 also answers keepalives and sends a status update
    every few seconds while we read). A lost connection is reopened at :attr:`position`.
    """

    def __init__(self, source: PostgresSource, start_lsn: int) -> None:
        self._source = source
        self._lsn = start_lsn
        self._acked = 0
        self._sent_ack = 0
        self._decoder = PgOutputDecoder()
        self._schemas: dict[int, tuple[Relation, TableSchema]] = {}
        self._conn: Any = None
        self._cur: Any = None
        self._open()

    @property
    def position(self) -> Mapping[str, Any]:
        """``{"lsn": ...}`` after the last transaction ``poll`` returned."""
        return {"lsn": format_lsn(self._lsn)}

    def _open(self) -> None:
        import psycopg2

        deadline = time.monotonic() + _RECONNECT_SECONDS
        while True:
            conn = self._source.connect(replication=True)
            try:
                cur = conn.cursor()
                cur.start_replication(
                    slot_name=self._source.slot_name,
                    decode=False,
                    start_lsn=self._lsn,
                    status_interval=_FEEDBACK_SECONDS,
                    options={
                        "proto_version": "1",
                        "publication_names": quote_ident(self._source.publication_name),
                    },
                )
            except psycopg2.errors.UndefinedObject as exc:
                conn.close()
                raise position_lost(self._source.slot_name, str(exc)) from exc
            except psycopg2.errors.ObjectInUse as exc:
                conn.close()
                if time.monotonic() > deadline:
                    raise SourceError("SourceUnavailable", str(exc).strip()) from exc
                time.sleep(0.1)
                continue
            except BaseException:
                conn.close()
                raise
            self._conn, self._cur = conn, cur
            self._decoder.reset()
            self._sent_ack = 0
            return

    def poll(self, max_rows: int, max_wait: float) -> list[ChangeBatch]:
        """Whole transactions, about ``max_rows`` rows, waiting up to ``max_wait`` seconds."""
        import psycopg2

        try:
            ready = self._read(max_rows, max_wait)
        except psycopg2.errors.UndefinedObject as exc:  # e.g. the publication was dropped
            self._close_connection()
            raise position_lost(self._source.slot_name, str(exc)) from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            self._reopen(exc)
            return []
        if not ready:
            return []
        self._lsn = ready[-1].end_lsn
        with contextlib.suppress(psycopg2.Error):  # the next read reports a broken connection
            self._cur.send_feedback(write_lsn=self._lsn)
        return change_batches(ready, self._schema_of)

    def _read(self, max_rows: int, max_wait: float) -> list[Transaction]:
        deadline = time.monotonic() + max_wait
        cur, feed = self._cur, self._decoder.feed
        ready: list[Transaction] = []
        rows = 0
        linger_until = 0.0
        self._feedback()
        while True:
            msg = cur.read_message()
            if msg is not None:
                done = feed(msg.payload)
                if type(done) is Transaction:
                    if not ready:
                        linger_until = time.monotonic() + _LINGER_SECONDS
                    ready.append(done)
                    rows += done.rows or len(done.changes)
                    if rows >= max_rows:
                        return ready
                continue
            if ready:
                # Commits right behind the first make one batch rather than many (each batch is
                # a target commit); wait for them briefly, never past a short gap.
                wait = min(_GAP_SECONDS, linger_until - time.monotonic())
                if wait <= 0 or not select.select([cur], [], [], wait)[0]:
                    return ready
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ready
            select.select([cur], [], [], min(remaining, _FEEDBACK_SECONDS))
            self._feedback()

    def sent_seq(self) -> int | None:
        """The WAL position the walsender has sent on this stream (``pg_stat_replication``).

        ``None`` while a transaction is half-read. The runner uses it to tell "nothing new" from
        "not delivered yet": decoding lags the commit, so an empty poll alone proves nothing.
        """
        if self._decoder.in_transaction or self._conn is None:
            return None
        rows = self._source._query(
            "SELECT sent_lsn::text FROM pg_stat_replication WHERE pid = %s",
            (self._conn.get_backend_pid(),),
        )
        return parse_lsn(str(rows[0][0])) if rows and rows[0][0] else None

    def _feedback(self) -> None:
        if self._acked > self._sent_ack:
            self._cur.send_feedback(flush_lsn=self._acked, force=True)
            self._sent_ack = self._acked

    def _reopen(self, exc: BaseException) -> None:
        """The walsender went away: the slot is gone (PositionLost) or we reconnect."""
        self._close_connection()
        if not self._source.slot_exists():
            raise position_lost(self._source.slot_name, str(exc)) from exc
        self._open()

    def _schema_of(self, rel: Relation) -> TableSchema:
        cached = self._schemas.get(rel.oid)
        if cached is None or cached[0] is not rel:
            cached = (rel, self._source.schema_of(rel))
            self._schemas[rel.oid] = cached
        return cached[1]

    def ack(self, position: Mapping[str, Any]) -> None:
        """Everything up to ``position`` is applied: the slot may release it."""
        self._acked = max(self._acked, parse_lsn(str(position["lsn"])))

    def close(self) -> None:
        """Send the last acknowledgement and close the replication connection."""
        with contextlib.suppress(Exception):  # a broken connection has nothing left to say
            if self._cur is not None:
                self._feedback()
        self._close_connection()

    def _close_connection(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        self._conn = self._cur = None
