"""The shard tree of DynamoDB Streams: parents before children, closed shards, checkpoints.

moto keeps one open shard per stream, so shard splits and closed shards come from a scripted
stand-in for the DynamoDB Streams API (the same calls and shapes boto3 returns); the one-shard
path runs against moto in tests/engine/test_dynamodb_replication.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from zetl_nb.sources.base import SourceError
from zetl_nb.sources.dynamodb_stream import DONE, ShardReader, ShardTree


class Trimmed(Exception):
    pass


class Expired(Exception):
    pass


class Streams:
    """Shards with records; a shard is closed when it has an EndingSequenceNumber."""

    class exceptions:
        TrimmedDataAccessException = Trimmed
        ExpiredIteratorException = Expired
        ResourceNotFoundException = KeyError

    def __init__(self, shards: list[dict[str, Any]], page: int = 2) -> None:
        self.shards = shards  # {"id", "parent", "closed", "records": [seq, ...]}
        self.page = page
        self.trimmed_before = 0

    def describe_stream(self, StreamArn: str, **kw: Any) -> dict[str, Any]:
        shards = [
            {
                "ShardId": s["id"],
                **({"ParentShardId": s["parent"]} if s.get("parent") else {}),
                "SequenceNumberRange": {
                    "StartingSequenceNumber": "0",
                    **({"EndingSequenceNumber": "9"} if s.get("closed") else {}),
                },
            }
            for s in self.shards
        ]
        return {"StreamDescription": {"Shards": shards}}

    def get_shard_iterator(self, **kw: Any) -> dict[str, Any]:
        shard = next(s for s in self.shards if s["id"] == kw["ShardId"])
        start = 0
        if kw["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER":
            start = shard["records"].index(int(kw["SequenceNumber"])) + 1
        if start < self.trimmed_before:
            raise Trimmed("trimmed")
        return {"ShardIterator": f"{shard['id']}:{start}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        sid, start = ShardIterator.rsplit(":", 1)
        shard = next(s for s in self.shards if s["id"] == sid)
        pos = int(start)
        taken = shard["records"][pos : pos + min(Limit, self.page)]
        out: dict[str, Any] = {
            "Records": [
                {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": str(n), "Keys": {}}}
                for n in taken
            ]
        }
        end = pos + len(taken)
        if not (shard.get("closed") and end >= len(shard["records"])):
            out["NextShardIterator"] = f"{sid}:{end}"
        return out


def seqs(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records]


def test_parents_are_read_before_children_and_closed_shards_finish() -> None:
    api = Streams(
        [
            {"id": "child-a", "parent": "root", "records": [20, 21]},
            {"id": "root", "closed": True, "records": [1, 2, 3]},
            {"id": "child-b", "parent": "root", "records": [30]},
        ]
    )
    reader = ShardReader(api, ShardTree("arn"))
    first = reader.read(100)
    assert seqs(first)[:3] == [1, 2, 3]  # the parent first
    assert reader.tree.checkpoint["root"] == DONE
    rest = seqs(first[3:]) + seqs(reader.read(100))
    assert sorted(rest) == [20, 21, 30]


def test_checkpoint_resumes_after_the_last_record() -> None:
    api = Streams([{"id": "s", "records": [1, 2, 3, 4, 5]}])
    reader = ShardReader(api, ShardTree("arn"))
    assert seqs(reader.read(3)) == [1, 2, 3]
    position = reader.tree.to_position()
    again = ShardReader(api, ShardTree.from_position(position, "arn"))  # a restart
    assert seqs(again.read(100)) == [4, 5]
    assert again.drained_at is not None


def test_a_new_stream_starts_from_its_beginning() -> None:
    tree = ShardTree.from_position({"stream": "old-arn", "shards": {"s": "3"}}, "new-arn")
    assert tree.checkpoint == {}


def test_an_expired_position_asks_for_a_resync() -> None:
    api = Streams([{"id": "s", "records": [1, 2, 3]}])
    api.trimmed_before = 2
    reader = ShardReader(api, ShardTree("arn", {"s": "1"}))
    with pytest.raises(SourceError) as err:
        reader.read(10)
    assert err.value.code == "PositionLost" and err.value.resync
