"""DynamoDB's export mode, driven directly: windows of incremental exports over synthetic times,
positions that resume, the initial copy from a full export, and prerequisites without a stream.

The table lives on a real moto endpoint (boto3 over HTTP); exports are written in AWS's format by
``TableExporter`` (changes with synthetic write times are added to its log). The engine-level
path through a Lab is tests/engine/test_dynamodb_export_replication.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dynamodb_export_fixtures import Change, TableExporter, micros

from zetl_nb.core.changes import ChangeBatch
from zetl_nb.services.dynamodb import DynamoDBEndpoint
from zetl_nb.sources.base import SourceError
from zetl_nb.sources.dynamodb_export import format_time
from zetl_nb.sources.dynamodb_export_stream import ExportLoad, ExportStream, export_windows
from zetl_nb.sources.dynamodb_source import DynamoDBSource
from zetl_nb.transform import unnest

ACCOUNT, REGION = "123456789012", "us-east-1"
HOUR = timedelta(hours=1)
T = datetime(2026, 1, 1, tzinfo=UTC)


# -- windows ---------------------------------------------------------------------------------------
def test_windows_are_at_most_a_day_and_leave_a_short_remainder() -> None:
    day, quarter = 86400.0, 900.0
    assert export_windows(T, T + 50 * HOUR, quarter, day) == [
        (T, T + 24 * HOUR),
        (T + 24 * HOUR, T + 48 * HOUR),
        (T + 48 * HOUR, T + 50 * HOUR),
    ]
    # 24 h 10 min: one day now, the 10 minutes wait for a later refresh (AWS's minimum is 15).
    assert export_windows(T, T + 24 * HOUR + timedelta(minutes=10), quarter, day) == [
        (T, T + 24 * HOUR)
    ]
    assert export_windows(T, T + timedelta(minutes=14), quarter, day) == []
    assert export_windows(T, T - HOUR, quarter, day) == []
    exactly = export_windows(T, T + timedelta(minutes=15), quarter, day)
    assert exactly == [(T, T + timedelta(minutes=15))]


def test_window_bounds_are_whole_milliseconds_on_a_compressed_clock() -> None:
    # time_scale 900: AWS's 15 minutes are 1 s, its 24 hours 96 s.
    until = T + timedelta(seconds=200, microseconds=123_456)
    windows = export_windows(T, until, 900 / 900, 86400 / 900)
    assert [(b - a).total_seconds() for a, b in windows] == [96.0, 96.0, 8.123]
    assert all(b.microsecond % 1000 == 0 for _, b in windows)
    # A maximum that is not a whole number of milliseconds rounds down, never past AWS's limit.
    odd = export_windows(T, T + timedelta(seconds=1), 0.0001, 0.0333333)
    assert {b - a for a, b in odd[:-1]} == {timedelta(milliseconds=33)}


# -- the source on a real endpoint -----------------------------------------------------------------
@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynamoDBEndpoint]:
    ep = DynamoDBEndpoint(tmp_path_factory.mktemp("ddb") / "dynamodb", account_id=ACCOUNT)
    ep.start()
    yield ep
    ep.stop()


@pytest.fixture
def table(endpoint: DynamoDBEndpoint) -> tuple[Any, str]:
    """A table without a stream: export mode needs none."""
    ddb = endpoint.client("dynamodb")
    name = f"Orders{uuid.uuid4().hex[:8]}"
    arn = ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    return ddb, arn


def make_source(
    client: Any, arn: str, exporter: TableExporter | None, mode: str = "FULL"
) -> DynamoDBSource:
    return DynamoDBSource(
        client,
        None,
        arn,
        ACCOUNT,
        REGION,
        to_arrow=lambda items, keys, m: unnest.unnest(items, keys, m),
        merge=unnest.merge_schemas,
        conform=unnest.conform,
        refresh_seconds=3600,  # one refresh (the first runs at once), then none in a test
        config=lambda: (mode, None),
        exporter=exporter,
    )


def item(i: int, price: str = "1") -> dict[str, Any]:
    return {"id": {"S": f"o{i}"}, "price": {"N": price}}


def key(i: int) -> dict[str, Any]:
    return {"id": {"S": f"o{i}"}}


def ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def poll(stream: Any) -> list[ChangeBatch]:
    batches: list[ChangeBatch] = stream.poll(10_000, 0)
    return batches


def test_a_refresh_exports_fifty_hours_as_three_windows_in_order(
    table: tuple[Any, str], tmp_path: Path
) -> None:
    client, arn = table
    exporter = TableExporter(tmp_path / "exports", ["id"], client)
    source = make_source(client, arn, exporter)
    source.discover(None)
    t0 = ms(datetime.now(UTC) - 50 * HOUR)
    exporter.changes += [
        Change(key(1), micros(t0), item(1)),  # at the full export's time: replayed
        Change(key(1), micros(t0 + 30 * HOUR), item(1, "2"), item(1)),
        Change(key(2), micros(t0 + 30 * HOUR) + 1, item(2)),
        Change(key(2), micros(t0 + 49 * HOUR), None, item(2)),
    ]
    stream = source.stream(
        {"export_from_time": format_time(t0), "seq": micros(t0) - 1, "replay": micros(t0)}
    )
    assert isinstance(stream, ExportStream)
    first, second, third = poll(stream), poll(stream), poll(stream)
    windows = [(a, b) for kind, a, b in exporter.requests]
    assert [kind for kind, _, _ in exporter.requests] == ["incremental"] * 3
    assert windows[0] == (t0, t0 + 24 * HOUR) and windows[1] == (t0 + 24 * HOUR, t0 + 48 * HOUR)
    assert windows[2][0] == t0 + 48 * HOUR and windows[2][1] <= datetime.now(UTC)
    assert [b.ops.to_pylist() for b in first + second + third] == [["c"], ["u", "c"], ["d"]]
    seqs = [s for b in first + second + third for s in b.seq.to_pylist()]
    assert seqs == sorted(seqs) and seqs[0] == micros(t0)
    # The write at the export time may already be in the copy; later ones are new.
    assert first[0].replay_until == micros(t0) and second[0].replay_until is None
    ends = [b.position["export_from_time"] for b in first + second + third]
    assert ends == [format_time(b) for _, b in windows]
    assert stream.sent_seq() == micros(windows[2][1]) >= source.requested_us
    assert stream.position["seq"] == micros(t0 + 49 * HOUR)
    assert poll(stream) == [] and len(exporter.requests) == 3  # the next refresh is an hour away
    assert len(exporter.discarded) == 3 and not any(p.exists() for p in exporter.discarded)


def test_a_stored_position_resumes_at_the_next_window(
    table: tuple[Any, str], tmp_path: Path
) -> None:
    client, arn = table
    exporter = TableExporter(tmp_path / "exports", ["id"], client)
    source = make_source(client, arn, exporter)
    source.discover(None)
    t0 = ms(datetime.now(UTC) - 30 * HOUR)
    exporter.changes += [
        Change(key(1), micros(t0 + HOUR), item(1)),
        Change(key(2), micros(t0 + 25 * HOUR), item(2)),
    ]
    [batch] = poll(source.stream({"export_from_time": format_time(t0), "seq": 0}))
    assert batch.position["export_from_time"] == format_time(t0 + 24 * HOUR)
    again = source.stream(batch.position)  # a restart from what was committed
    [later] = poll(again)
    assert exporter.requests[-1][1] == t0 + 24 * HOUR
    assert later.rows.column("id").to_pylist() == ["o2"]


def test_a_window_shorter_than_the_minimum_waits(table: tuple[Any, str], tmp_path: Path) -> None:
    client, arn = table
    exporter = TableExporter(tmp_path / "exports", ["id"], client)
    source = make_source(client, arn, exporter)
    source.discover(None)
    start = ms(datetime.now(UTC) - timedelta(minutes=5))
    stream = source.stream({"export_from_time": format_time(start), "seq": 7})
    assert poll(stream) == [] and exporter.requests == []
    assert stream.sent_seq() == micros(start) < source.requested_us  # lab.wait keeps waiting
    assert stream.position == {"export_from_time": format_time(start), "seq": 7, "replay": 0}


def test_a_position_without_an_export_time_resyncs(table: tuple[Any, str], tmp_path: Path) -> None:
    client, arn = table
    source = make_source(client, arn, TableExporter(tmp_path, ["id"], client))
    with pytest.raises(SourceError) as lost:
        source.stream({"stream": "arn:...", "shards": {}, "seq": 5})
    assert lost.value.code == "PositionLost" and lost.value.resync


@pytest.mark.parametrize("mode", ["FULL", "NOUNNEST"])
def test_the_initial_copy_is_a_full_export(
    table: tuple[Any, str], tmp_path: Path, mode: str
) -> None:
    client, arn = table
    exporter = TableExporter(tmp_path / "exports", ["id"], client)
    name = arn.rpartition("/")[2]
    for i in range(5):
        exporter.put(name, {**item(i, str(i)), "m": {"M": {"k": {"S": "v"}}}})
    source = make_source(client, arn, exporter, mode)
    reader = source.snapshot([source.id])
    assert isinstance(reader, ExportLoad) and exporter.requests == [("full", None, None)]
    schema = reader.schema(source.id)
    assert schema.primary_key == ("id",) and schema.names[0] == "id"
    assert schema.names == (["id", "price", "m.k"] if mode == "FULL" else ["id", "value"])
    rows = [r for b in reader.read(source.id) for r in b.to_pylist()]
    assert sorted(r["id"] for r in rows) == [f"o{i}" for i in range(5)]
    assert reader.position["seq"] == reader.seq and reader.position["replay"] == reader.seq + 1
    reader.close()
    assert exporter.discarded and not exporter.discarded[0].exists()


def test_export_mode_does_not_ask_for_a_stream(table: tuple[Any, str], tmp_path: Path) -> None:
    client, arn = table
    scan = make_source(client, arn, None)
    assert [p.code for p in scan.check_prerequisites()] == ["SourceStreamDisabled"]
    export = make_source(client, arn, TableExporter(tmp_path, ["id"], client))
    assert export.check_prerequisites() == []
