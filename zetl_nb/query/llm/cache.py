"""The response cache: answers kept in a SQLite file in the Lab home, keyed by a request hash.

A key is the SHA-256 of the model that answered, the messages and the parameters that change an
answer (not timeouts or API keys), so a re-run of the same query asks no provider anything.
Only answers are kept, never failures: a call that failed is tried again next time. litellm's
own disk cache is not used (it needs extra packages and crashes without them).

>>> cache = ResponseCache(lab.home / "llm" / "cache.sqlite")      # doctest: +SKIP
>>> cache.get_many([key])                                        # doctest: +SKIP
{}
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["CachedAnswer", "ResponseCache", "request_key"]

log = logging.getLogger("zetl_nb.llm")

#: Parameters that do not change an answer, left out of the key.
UNKEYED: Final = frozenset(
    {"timeout", "api_key", "metadata", "num_retries", "mock_delay", "extra_headers", "user"}
)
_CHUNK = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    created_at REAL NOT NULL
)"""


def request_key(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> str:
    """The cache key of a request: a hex SHA-256 of model, messages and answer-shaping params."""
    keyed = {k: v for k, v in params.items() if k not in UNKEYED}
    blob = json.dumps(
        {"model": model, "messages": list(messages), "params": keyed},
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    """A stored answer, with the usage and cost of the call that produced it."""

    model: str
    response: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class ResponseCache:
    """A SQLite file of answers; safe to share between threads and between processes.

    Writes that fail (a read-only home, a full disk) are logged and skipped: a cache must never
    break the query it serves.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"<ResponseCache {self.path}>"

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if not self._ready:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            self._ready = True
        return conn

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedAnswer]:
        """The stored answers among ``keys`` (missing keys are absent from the result)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, CachedAnswer] = {}
        if not wanted:
            return found
        with self._lock:
            try:
                conn = self._connect()
            except (OSError, sqlite3.Error) as exc:
                log.warning("LLM cache %s unreadable (%s); calling the model", self.path, exc)
                return found
            try:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    rows = conn.execute(
                        "SELECT key, model, response, prompt_tokens, completion_tokens, cost_usd "
                        f"FROM responses WHERE key IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                    for key, *values in rows:
                        found[key] = CachedAnswer(*values)
            finally:
                conn.close()
        return found

    def put_many(self, answers: Mapping[str, CachedAnswer]) -> None:
        """Store ``answers`` (key → answer) in one transaction; an existing key is replaced."""
        if not answers:
            return
        now = time.time()
        rows = [
            (k, a.model, a.response, a.prompt_tokens, a.completion_tokens, a.cost_usd, now)
            for k, a in answers.items()
        ]
        with self._lock:
            try:
                conn = self._connect()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany(
                        "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                    )
                    conn.execute("COMMIT")
                finally:
                    conn.close()
            except (OSError, sqlite3.Error) as exc:
                log.warning("LLM cache %s not written (%s)", self.path, exc)

    def __len__(self) -> int:
        with self._lock:
            conn = self._connect()
            try:
                return int(conn.execute("SELECT count(*) FROM responses").fetchone()[0])
            finally:
                conn.close()

    def clear(self) -> None:
        """Forget every stored answer."""
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("DELETE FROM responses")
            finally:
                conn.close()
