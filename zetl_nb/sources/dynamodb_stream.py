"""Change capture from DynamoDB Streams: the shard tree, with per-shard checkpoints.

A stream is a tree of shards: a shard closes (every few hours on AWS, or when a partition
splits) and its children continue its keys. Every change to one item lands in one lineage, in
order, so reading each shard only after its parent is finished keeps per-item order. The
checkpoint is the last sequence number read per shard (``"done"`` once a closed shard is
exhausted); it is committed with the data in the Iceberg snapshot summary, and reading resumes
``AFTER_SEQUENCE_NUMBER`` of it. A checkpoint older than the stream's 24-hour retention
(``TrimmedDataAccessException``) cannot resume: that is a lost position, and the table resyncs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import SourceError

DONE = "done"


@dataclass
class ShardTree:
    """Where reading stands in each shard of one stream."""

    stream_arn: str
    checkpoint: dict[str, str] = field(default_factory=dict)  # shard id -> seq number | DONE

    def to_position(self) -> dict[str, Any]:
        return {"stream": self.stream_arn, "shards": dict(self.checkpoint)}

    @classmethod
    def from_position(cls, position: Mapping[str, Any], stream_arn: str) -> ShardTree:
        if position.get("stream") != stream_arn:  # a new stream (disabled and re-enabled)
            return cls(stream_arn)
        return cls(stream_arn, dict(position.get("shards") or {}))


def start_here(streams: Any, stream_arn: str) -> tuple[ShardTree, dict[str, str]]:
    """Where the stream stands now, for a copy about to start.

    Closed shards are finished (every record in them precedes now, so the copy holds it); each
    open shard gets a ``LATEST`` iterator, which reads only records written after now. Iterators
    are not positions: they live 15 minutes and only in memory, so a shard read without one (a
    restart, an expired iterator) starts at ``TRIM_HORIZON`` and the hand-off filter drops what
    the copy holds. Without this, the first refresh after a copy re-read the stream's whole
    24-hour backlog only to drop it (~1.5 ms a record on the embedded endpoint).
    """
    tree = ShardTree(stream_arn)
    iterators: dict[str, str] = {}
    for shard in describe_shards(streams, stream_arn):
        sid = shard["ShardId"]
        if shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber"):
            tree.checkpoint[sid] = DONE
            continue
        it = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=sid, ShardIteratorType="LATEST"
        ).get("ShardIterator")
        if it:
            iterators[sid] = it
    return tree, iterators


def describe_shards(streams: Any, stream_arn: str) -> list[dict[str, Any]]:
    """Every shard of the stream (``DescribeStream``, paginated)."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        desc = streams.describe_stream(**kwargs)["StreamDescription"]
        shards.extend(desc.get("Shards", []))
        last = desc.get("LastEvaluatedShardId")
        if not last:
            return shards
        kwargs["ExclusiveStartShardId"] = last


class ShardReader:
    """Reads records from a stream's shards in lineage order; one reader per stream.

    ``iterators`` (from :func:`start_here`) start shards that have no checkpoint yet.
    """

    def __init__(
        self, streams: Any, tree: ShardTree, iterators: Mapping[str, str] | None = None
    ) -> None:
        self.streams = streams
        self.tree = tree
        self._iterators: dict[str, str] = {
            sid: it for sid, it in (iterators or {}).items() if sid not in tree.checkpoint
        }
        #: Monotonic time when every open shard was last read to its current end.
        self.drained_at: float | None = None
        #: Whether the last ``read`` reached the current end of every shard.
        self.drained = False
        #: Records read so far (a copy's backlog skipped by ``start_here`` is not read at all).
        self.records_read = 0

    def read(self, max_records: int) -> list[dict[str, Any]]:
        """Up to about ``max_records`` records, parents' records before their children's."""
        out: list[dict[str, Any]] = []
        started = time.monotonic()
        everything = True
        for shard in self._ready_shards():
            if len(out) >= max_records:
                everything = False
                break
            records, exhausted = self._read_shard(shard, max_records - len(out))
            out.extend(records)
            if not exhausted:
                everything = False
        self.drained = everything
        if everything:
            self.drained_at = started
        return out

    def _ready_shards(self) -> list[dict[str, Any]]:
        """Unfinished shards whose parent is finished or gone, oldest first."""
        shards = self._describe()
        present = {s["ShardId"] for s in shards}
        ready = []
        for s in shards:
            if self.tree.checkpoint.get(s["ShardId"]) == DONE:
                continue
            parent = s.get("ParentShardId")
            if parent and parent in present and self.tree.checkpoint.get(parent) != DONE:
                continue
            ready.append(s)
        return ready

    def _describe(self) -> list[dict[str, Any]]:
        return describe_shards(self.streams, self.tree.stream_arn)

    def _read_shard(self, shard: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Records of one shard; whether it was read to its current end."""
        sid = shard["ShardId"]
        out: list[dict[str, Any]] = []
        iterator = self._iterators.get(sid) or self._iterator(sid)
        while iterator and len(out) < limit:
            try:
                want = min(1000, limit - len(out))
                page = self.streams.get_records(ShardIterator=iterator, Limit=want)
            except self.streams.exceptions.ExpiredIteratorException:
                iterator = self._iterator(sid)
                continue
            except self.streams.exceptions.TrimmedDataAccessException as exc:
                raise _lost(sid, exc) from exc
            records = page.get("Records", [])
            out.extend(records)
            self.records_read += len(records)
            if records:
                self.tree.checkpoint[sid] = records[-1]["dynamodb"]["SequenceNumber"]
            iterator = page.get("NextShardIterator")
            if not records:
                break
        if iterator is None:  # a closed shard, read to its end
            self.tree.checkpoint[sid] = DONE
            self._iterators.pop(sid, None)
            return out, True
        self._iterators[sid] = iterator
        return out, len(out) < limit

    def _iterator(self, sid: str) -> str | None:
        seq = self.tree.checkpoint.get(sid)
        kwargs: dict[str, Any] = {"StreamArn": self.tree.stream_arn, "ShardId": sid}
        if seq:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=seq)
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        try:
            return self.streams.get_shard_iterator(**kwargs).get("ShardIterator")  # type: ignore[no-any-return]
        except self.streams.exceptions.TrimmedDataAccessException as exc:
            raise _lost(sid, exc) from exc
        except self.streams.exceptions.ResourceNotFoundException as exc:
            raise _lost(sid, exc) from exc


def _lost(shard: str, exc: Exception) -> SourceError:
    return SourceError(
        "PositionLost",
        f"DynamoDB stream shard {shard} no longer holds the checkpointed records ({exc}); "
        "streams keep 24 hours. The table is copied again (resync).",
        resync=True,
    )
