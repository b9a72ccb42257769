"""Instrumentation of zetl_nb inside a worker: phase timers, cProfile, the apply path.

Wrappers installed on zetl_nb and pyiceberg classes before a run (instrumentation, not code):
:class:`Timers` sums wall time per phase; :func:`instrument_apply` also logs every target commit
(used by the CDC and steady-state workers).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any


class Timers:
    """Wall time spent in wrapped functions, summed over calls (instrumentation, not code)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        # Per apply: (end, seconds, changes, data files after it, 1-minute load average).
        self.log: list[tuple[float, float, int, int, float]] = []
        self._lock = threading.Lock()

    def add(self, label: str, seconds: float) -> None:
        with self._lock:
            self.seconds[label] += seconds
            self.calls[label] += 1

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self.calls.clear()
            self.log.clear()

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - start)

        setattr(owner, attr, timed)

    def wrap_iter(self, owner: Any, attr: str, label: str) -> None:
        """Time spent producing the items of a generator function (not consuming them)."""
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            items = iter(fn(*args, **kwargs))
            while True:
                start = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    self.add(label, time.perf_counter() - start)
                yield item

        setattr(owner, attr, timed)

    def table(self, wall: float) -> list[str]:
        rows = [
            "| phase (replication thread) | seconds | share of wall | calls |",
            "|---|---|---|---|",
        ]
        for label, secs in self.seconds.items():
            rows.append(f"| {label} | {secs:.2f} | {secs / wall:.0%} | {self.calls[label]} |")
        return rows


def module_with(attr: str, *names: str) -> Any:
    """The first of ``names`` (modules) defining ``attr``: the source package is being split."""
    import importlib

    for name in names:
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            if hasattr(module, attr):
                return module
    raise LookupError(f"none of {names} defines {attr}")


def profile_method(owner: Any, attr: str, profiler: Any) -> None:
    """Run ``owner.attr`` under ``profiler``; cProfile follows the calling (runner) thread."""
    fn = getattr(owner, attr)

    @functools.wraps(fn)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        profiler.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            profiler.disable()

    setattr(owner, attr, profiled)


def profile_stats(profiler: Any, sort: str) -> list[str]:
    """The top 20 lines of ``profiler``'s stats sorted by ``sort``."""
    import io
    import pstats

    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats(sort).print_stats(20)
    return [line for line in text.getvalue().splitlines() if line.strip()]


def instrument_apply(timers: Timers, profiler: Any | None = None) -> None:
    """Phase timers on the change-apply path, one ``timers.log`` entry per target commit.

    Shared by the CDC and steady-state workers: a change here changes both measurements.
    """
    import pyiceberg.table

    from zetl_nb.engine.replication import RelationalRunner
    from zetl_nb.target import writer

    pg = "zetl_nb.sources.postgres"
    stream = module_with("PostgresStream", f"{pg}_stream", pg)
    timers.wrap(stream.PostgresStream, "poll", "pgoutput read + decode (poll)")
    timers.wrap(writer, "coalesce", "coalesce per key")
    timers.wrap(pyiceberg.table.Transaction, "delete", "pyiceberg delete (copy-on-write rewrite)")
    timers.wrap(pyiceberg.table.Transaction, "append", "pyiceberg append (Parquet write)")
    timers.wrap(pyiceberg.table.Transaction, "commit_transaction", "pyiceberg commit")
    timers.wrap(writer.TableWriter, "maintain", "maintain (compaction, expiry)")
    timers.wrap(RelationalRunner, "_save_position", "save position (control.db)")
    apply = writer.TableWriter.apply

    def logged(self: Any, batch: Any) -> Any:
        start = time.perf_counter()
        try:
            return apply(self, batch)
        finally:
            end = time.perf_counter()
            timers.add("apply total (one target commit each)", end - start)
            snap = self.table.current_snapshot()
            summary = snap.summary.additional_properties if snap and snap.summary else {}
            files = int(summary.get("total-data-files", 0))
            timers.log.append((end, end - start, len(batch), files, os.getloadavg()[0]))

    writer.TableWriter.apply = logged  # type: ignore[method-assign]
    if profiler is not None:
        profile_method(RelationalRunner, "_apply", profiler)
