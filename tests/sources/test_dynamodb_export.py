"""DynamoDB exports in AWS's S3 layout → Arrow: full exports, incremental exports, errors.

Exports are written by ``dynamodb_export_fixtures`` exactly as the DynamoDB guide documents them;
the reference for every row is :func:`~zetl_nb.transform.unnest.unnest` of the same items.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from dynamodb_export_fixtures import (
    Change,
    micros,
    write_full_export,
    write_incremental_export,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zetl_nb.core.changes import TableId
from zetl_nb.sources.base import SourceError
from zetl_nb.sources.dynamodb_export import (
    ExportError,
    ExportSnapshot,
    read_full_export,
    read_incremental_export,
    read_manifest,
)
from zetl_nb.sources.dynamodb_exporter import export_request
from zetl_nb.transform.dynamotypes import UnnestError
from zetl_nb.transform.unnest import unnest

T0 = datetime(2026, 11, 22, 12, 0, 0, 28000, tzinfo=UTC)
PRODUCTS = TableId("", None, "products")


def product(i: int) -> dict[str, Any]:
    return {
        "id": {"S": f"p{i:05d}"},
        "price": {"N": f"{i % 997}.{i % 100:02d}"},
        "name": {"S": f"Product {i}"},
        "description": {
            "M": {
                "color": {"S": ("red", "green", "blue")[i % 3]},
                "weight_kg": {"N": str(i % 40 / 4)},
                "material": {"S": "steel"},
                "in_stock": {"BOOL": i % 2 == 0},
            }
        },
        "tags": {"SS": ["sale", f"t{i % 7}"]},
    }


def read_all(root: Path, keys: list[str], mode: str = "FULL", **kw: Any) -> pa.Table:
    tables = list(read_full_export(root, keys, mode, **kw))
    assert tables, "an export with items yields at least one table"
    assert all(t.schema == tables[0].schema for t in tables), "chunks share one schema"
    return pa.concat_tables(tables)


# -- full exports ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arrow", [True, False])
def test_full_export_round_trips_products(tmp_path: Path, arrow: bool) -> None:
    items = [product(i) for i in range(500)]
    root = write_full_export(tmp_path, items, files=3, empty_files=1)
    got = read_all(root, ["id"], arrow=arrow, chunk_bytes=64 * 250)
    assert got.equals(unnest(items, ["id"], "FULL"))
    assert got.column_names[:3] == ["id", "price", "name"]
    assert got.schema.field("description.weight_kg").type == pa.float64()


def test_zero_byte_data_files_are_empty_partitions(tmp_path: Path) -> None:
    # The guide: "For partitions that are empty, your export request will create an empty file".
    root = write_full_export(tmp_path, [product(1)], files=1, empty_files=1)
    entries = [json.loads(x) for x in (root / "manifest-files.json").read_text().splitlines()]
    empty = next(e for e in entries if e["itemCount"] == 0)
    (tmp_path / empty["dataFileS3Key"]).write_bytes(b"")
    empty["md5Checksum"] = base64.b64encode(hashlib.md5(b"").digest()).decode()
    (root / "manifest-files.json").write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert read_all(root, ["id"]).equals(unnest([product(1)], ["id"]))


def test_widened_column_keeps_dynamodb_number_text(tmp_path: Path) -> None:
    # Chunk 1 has price as N, chunk 2 as S: the column becomes string, and chunk 1 is unnested
    # again so its numbers read as DynamoDB wrote them ("9.50"), as unnest of all items gives.
    items: list[dict[str, Any]] = [{"id": {"S": str(i)}, "price": {"N": "9.50"}} for i in range(4)]
    items += [{"id": {"S": "9"}, "price": {"S": "cheap"}, "extra": {"M": {"k": {"S": "v"}}}}]
    root = write_full_export(tmp_path, items, files=2)
    assert len(list(read_full_export(root, ["id"], chunk_bytes=80))) >= 3
    got = read_all(root, ["id"], chunk_bytes=80)
    assert got.column("price").to_pylist() == ["9.50"] * 4 + ["cheap"]
    assert got.equals(unnest(items, ["id"]))


MIXED: list[dict[str, Any]] = [
    {
        "pk": {"S": "a\u0000b"},
        "sk": {"N": "1"},
        "bin": {"B": b"\x00\x01"},
        "list": {"L": [{"S": "x"}, {"N": "2.50"}, {"NULL": True}, {"M": {"k": {"BOOL": True}}}]},
        "gone": {"NULL": True},
        "m": {"M": {"deep": {"M": {"s": {"S": "nul\u0000here"}}}, "bs": {"BS": [b"\xff"]}}},
    },
    {
        "pk": {"S": "b"},
        "sk": {"N": "2"},
        "bin": {"S": "not binary"},
        "m": {"M": {"deep": {"S": "flat"}, "n": {"NULL": True}}},
        "tags": {"SS": ["\u0000", "x"]},
    },
    {"pk": {"S": "c"}, "sk": {"N": "-0.000001"}, "empty": {"M": {}}, "nul\u0000name": {"S": "v"}},
]


@pytest.mark.parametrize("mode", ["FULL", "TOPLEVEL", "NOUNNEST"])
@pytest.mark.parametrize("arrow", [True, False])
def test_every_mode_round_trips_mixed_items(tmp_path: Path, mode: str, arrow: bool) -> None:
    root = write_full_export(tmp_path, MIXED, files=2)
    got = read_all(root, ["pk", "sk"], mode, arrow=arrow, chunk_bytes=1)
    assert got.equals(unnest(MIXED, ["pk", "sk"], mode))


def test_nul_characters_and_null_attributes(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, MIXED, files=1)
    got = read_all(root, ["pk", "sk"]).to_pylist()
    assert got[0]["pk"] == "a\u0000b"
    assert got[0]["m.deep.s"] == "nul\u0000here"
    assert got[1]["tags"] == ["\u0000", "x"]
    assert got[2]["nul\u0000name"] == "v"
    names = read_all(root, ["pk", "sk"]).column_names
    assert "gone" not in names and "m.n" not in names and "empty" not in names  # NULL ignored


def test_null_key_is_an_unnest_error_naming_the_data_file(tmp_path: Path) -> None:
    items = [product(1), {**product(2), "id": {"NULL": True}}]
    root = write_full_export(tmp_path, items, files=1)
    with pytest.raises(UnnestError, match=r"no key attribute 'id'.*data file .*\.json\.gz"):
        read_all(root, ["id"])


SCALARS = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=5)),
    st.builds(lambda n: {"N": n}, st.sampled_from(["0", "-1.5", "1E-130", "9.50", "1e125"])),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.builds(lambda b: {"B": b}, st.binary(max_size=3)),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": s}, st.lists(st.text(max_size=3), min_size=1, max_size=2)),
    st.builds(lambda s: {"NS": s}, st.lists(st.sampled_from(["1", "2.5"]), min_size=1)),
)
NAMES = st.sampled_from(["a", "b", "c.d", "e"])
ATTRS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(NAMES, inner, max_size=3)),
        st.builds(lambda xs: {"L": xs}, st.lists(inner, max_size=2)),
    ),
    max_leaves=6,
)
ITEMS = st.lists(st.dictionaries(NAMES, ATTRS, max_size=4), min_size=1, max_size=6).map(
    lambda bodies: [{"pk": {"S": str(i)}, **body} for i, body in enumerate(bodies)]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=ITEMS,
    chunk=st.sampled_from([1, 60, 200, 1 << 20]),
    mode=st.sampled_from(["FULL", "TOPLEVEL"]),
)
def test_export_reads_as_unnest_of_its_items(
    tmp_path_factory: pytest.TempPathFactory, items: list[dict[str, Any]], chunk: int, mode: str
) -> None:
    """Both paths (Arrow and line by line), any chunking: the rows of ``unnest`` of the items,
    or its error."""
    try:
        expected = unnest(items, ["pk"], mode)
    except UnnestError as exc:
        expected = exc
    root = write_full_export(tmp_path_factory.mktemp("export"), items, files=2)
    for arrow in (True, False):
        if isinstance(expected, UnnestError):
            with pytest.raises(UnnestError):
                read_all(root, ["pk"], mode, arrow=arrow, chunk_bytes=chunk)
        else:
            got = read_all(root, ["pk"], mode, arrow=arrow, chunk_bytes=chunk)
            assert got.equals(expected), (arrow, got.schema, expected.schema)


# -- incremental exports --------------------------------------------------------------------------
def at(minutes: float) -> int:
    return micros(T0 + timedelta(minutes=minutes))


def item(i: int, price: str) -> dict[str, Any]:
    return {"id": {"S": f"p{i}"}, "price": {"N": price}}


def key(i: int) -> dict[str, Any]:
    return {"id": {"S": f"p{i}"}}


def test_incremental_export_orders_changes_and_deletes_keys(tmp_path: Path) -> None:
    changes = [
        Change(key(1), at(5), new_image=item(1, "1")),  # INSERT
        Change(key(2), at(2), new_image=item(2, "2.5"), old_image=item(2, "2")),  # MODIFY
        Change(key(3), at(9), old_image=item(3, "3")),  # REMOVE
        Change(key(4), at(1), new_image=item(4, "4")),  # INSERT, then MODIFY: one record
        Change(key(4), at(7), new_image={**item(4, "4.5"), "note": {"S": "x"}}),
        Change(key(5), at(3), new_image=item(5, "5")),  # INSERT, then REMOVE: nothing
        Change(key(5), at(4), old_image=item(5, "5")),
    ]
    root = write_incremental_export(tmp_path, changes, ["id"], T0, T0 + timedelta(minutes=15))
    [batch] = read_incremental_export(root, ["id"])
    assert batch.table == PRODUCTS
    assert batch.seq.to_pylist() == [at(2), at(5), at(7), at(9)]
    assert batch.ops.to_pylist() == ["u", "c", "c", "d"]
    assert batch.rows.to_pylist() == [
        {"id": "p2", "price": 2.5, "note": None},
        {"id": "p1", "price": 1.0, "note": None},
        {"id": "p4", "price": 4.5, "note": "x"},
        {"id": "p3", "price": None, "note": None},  # a delete carries its keys only
    ]
    assert batch.schema.primary_key == ("id",)
    assert batch.position == {"export_from_time": "2026-11-22T12:15:00.028Z", "seq": at(9)}


def test_incremental_batches_never_split_one_timestamp(tmp_path: Path) -> None:
    changes = [Change(key(i), at(i // 3), new_image=item(i, str(i))) for i in range(9)]
    root = write_incremental_export(tmp_path, changes, ["id"], T0, T0 + timedelta(hours=1))
    batches = read_incremental_export(root, ["id"], batch_rows=2)
    assert [len(b) for b in batches] == [3, 3, 3]  # 2 rows asked, but a timestamp stays whole
    assert [b.position["seq"] for b in batches] == [at(0), at(1), at(2)]
    froms = [b.position["export_from_time"] for b in batches]
    assert froms == ["2026-11-22T12:00:00.028Z"] * 2 + ["2026-11-22T13:00:00.028Z"]
    seqs = [s for b in batches for s in b.seq.to_pylist()]
    assert seqs == sorted(seqs)


def test_incremental_schema_grows_batch_by_batch(tmp_path: Path) -> None:
    changes = [
        Change(key(1), at(1), new_image=item(1, "1")),
        Change(key(2), at(2), new_image={**item(2, "2"), "m": {"M": {"x": {"BOOL": True}}}}),
    ]
    root = write_incremental_export(tmp_path, changes, ["id"], T0, T0 + timedelta(hours=1))
    first, second = read_incremental_export(root, ["id"], batch_rows=1)
    assert first.rows.column_names == ["id", "price"]
    assert second.rows.column_names == ["id", "price", "m.x"]


def test_new_image_view_upserts_without_telling_insert_from_update(tmp_path: Path) -> None:
    changes = [
        Change(key(1), at(1), new_image=item(1, "1")),
        Change(key(2), at(2), new_image=item(2, "3"), old_image=item(2, "2")),
        Change(key(3), at(3), old_image=item(3, "3")),
    ]
    root = write_incremental_export(
        tmp_path, changes, ["id"], T0, T0 + timedelta(hours=1), view="NEW_IMAGE"
    )
    [batch] = read_incremental_export(root, ["id"])
    assert batch.ops.to_pylist() == ["u", "u", "d"]
    assert batch.rows.column("price").to_pylist() == [1.0, 3.0, None]


def test_snapshot_seq_is_below_every_change_of_the_next_incremental_export(tmp_path: Path) -> None:
    full = write_full_export(tmp_path / "full", [product(1)], export_time=T0)
    snap = ExportSnapshot(full, ["id"])
    assert snap.position == {"export_from_time": "2026-11-22T12:00:00.028Z", "seq": snap.seq}
    # ExportFromTime is inclusive: a write at the export time comes again, above the snapshot.
    changes = [Change(key(1), micros(T0), new_image=item(1, "2"))]
    incr = write_incremental_export(tmp_path / "incr", changes, ["id"], T0, T0 + timedelta(1))
    [batch] = read_incremental_export(incr, ["id"])
    assert batch.seq.to_pylist()[0] == snap.seq + 1


# -- the SnapshotReader ---------------------------------------------------------------------------
def test_export_snapshot_reads_like_the_scan(tmp_path: Path) -> None:
    items = [product(i) for i in range(10)]
    root = write_full_export(tmp_path, items, files=2)
    snap = ExportSnapshot(root, ["id"], chunk_bytes=600)
    schema = snap.schema(PRODUCTS)
    assert schema.primary_key == ("id",) and schema.names[0] == "id"
    batches = list(snap.read(PRODUCTS, batch_rows=2))
    assert max(b.num_rows for b in batches) == 2
    assert pa.Table.from_batches(batches).equals(unnest(items, ["id"]))
    assert schema.arrow_schema() == unnest(items, ["id"]).schema
    with pytest.raises(SourceError) as again:
        list(snap.read(PRODUCTS))
    assert again.value.code == "SourceUnavailable"
    with pytest.raises(SourceError) as other:
        snap.schema(TableId("", None, "orders"))
    assert other.value.code == "SourceTableNotFound"
    snap.close()


def test_empty_export_keeps_the_key_columns_it_is_given(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [], files=1)
    snap = ExportSnapshot(root, ["id"], schema=pa.schema([("id", pa.string())]))
    assert snap.schema(PRODUCTS).names == ["id"]
    assert list(snap.read(PRODUCTS)) == []


def test_full_then_incremental_exports_replicate_into_iceberg(tmp_path: Path) -> None:
    """The engine's path with the real writer: snapshot load, then incremental batches, then a
    replay of the same export after a restart (skipped by seq)."""
    from zetl_nb.target.catalog import LocalCatalog
    from zetl_nb.target.deadletters import DeadLetters
    from zetl_nb.target.writer import TableWriter

    items = [product(i) for i in range(20)]
    snap = ExportSnapshot(write_full_export(tmp_path / "full", items, export_time=T0), ["id"])
    catalog = LocalCatalog(tmp_path / "lake").catalog
    catalog.create_namespace("lake")
    schema = snap.schema(PRODUCTS)
    table = catalog.create_table(("lake", "products"), schema.arrow_schema())
    writer = TableWriter(table, schema, DeadLetters(catalog, "lake"), "arn:test", additive=True)
    assert writer.load(snap.read(PRODUCTS), snap.seq, snap.position) == 20

    changed = {**product(3), "price": {"N": "1.25"}, "extra": {"S": "new column"}}
    changes = [
        Change(key(100), at(1), new_image=item(100, "7")),
        Change({"id": {"S": "p00003"}}, at(2), new_image=changed, old_image=product(3)),
        Change({"id": {"S": "p00004"}}, at(3), old_image=product(4)),
    ]
    incr = write_incremental_export(tmp_path / "incr", changes, ["id"], T0, T0 + timedelta(1))
    for batch in read_incremental_export(incr, ["id"], batch_rows=1):
        writer.evolve(batch.schema)
        writer.apply(batch)
    again = TableWriter(table, writer.schema, writer.dead_letters, "arn:test", additive=True)
    replayed = [again.apply(b) for b in read_incremental_export(incr, ["id"])]
    assert [c.skipped for c in replayed] == [3]

    final = [changed if i == 3 else product(i) for i in range(20) if i != 4]
    expected = unnest([*final, item(100, "7")], ["id"]).to_pylist()
    table.refresh()
    rows = table.scan().to_arrow().to_pylist()
    assert sorted(rows, key=lambda r: r["id"]) == sorted(expected, key=lambda r: r["id"])


# -- finding files, and errors that say what to do ------------------------------------------------
def test_root_may_be_the_bucket_copy_or_the_summary(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1)])
    assert read_manifest(tmp_path).directory == root
    assert read_manifest(root / "manifest-summary.json").directory == root
    write_full_export(tmp_path, [product(2)], export_time=T0 + timedelta(hours=1))
    with pytest.raises(ExportError, match=r"no single DynamoDB export.*found: .*, .*"):
        read_manifest(tmp_path)


def test_keys_without_the_prefix_resolve_too(tmp_path: Path) -> None:
    # The guide's 2020 example lists keys as "AWSDynamoDB/<ExportId>/..." beside an s3Prefix.
    root = write_full_export(tmp_path, [product(1)], prefix="deep/prefix")
    summary = json.loads((root / "manifest-summary.json").read_text())
    summary["manifestFilesS3Key"] = summary["manifestFilesS3Key"].removeprefix("deep/prefix/")
    del summary["exportType"]  # older full exports do not say
    (root / "manifest-summary.json").write_text(json.dumps(summary))
    files = (root / "manifest-files.json").read_text().replace('"deep/prefix/', '"')
    (root / "manifest-files.json").write_text(files)
    assert read_all(root, ["id"]).num_rows == 1


def test_missing_summary_names_the_file_and_the_fix(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1)])
    (root / "manifest-summary.json").unlink()
    with pytest.raises(ExportError, match=r"manifest-summary\.json.*AWSDynamoDB/<ExportId>") as e:
        list(read_full_export(root, ["id"]))
    assert e.value.code == "SourceExportInvalid"


@pytest.mark.parametrize("text", ["{not json", "[]", '{"version": "2020-06-30"}'])
def test_bad_summary_names_the_file(tmp_path: Path, text: str) -> None:
    root = write_full_export(tmp_path, [product(1)])
    (root / "manifest-summary.json").write_text(text)
    with pytest.raises(ExportError, match=r"(?i)manifest-summary\.json.*download the"):
        read_manifest(root)


def test_missing_or_bad_files_manifest(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1)])
    (root / "manifest-files.json").write_text('{"itemCount": 1}\n')
    with pytest.raises(ExportError, match=r"manifest-files\.json line 1 .*dataFileS3Key"):
        read_manifest(root)
    (root / "manifest-files.json").unlink()
    with pytest.raises(ExportError, match=r"cannot read .*manifest-files\.json.*Download"):
        read_manifest(root)


def test_missing_data_file_names_its_key_and_where_it_was_looked_for(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1)], files=1)
    [data] = (root / "data").iterdir()
    data.unlink()
    with pytest.raises(ExportError, match=rf"data file .*{data.name} .*is not at {data}"):
        read_manifest(root)


def test_damaged_data_files_are_refused(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1), product(2)], files=1)
    [data] = (root / "data").iterdir()
    good = data.read_bytes()
    data.write_bytes(good[:-9])
    with pytest.raises(ExportError, match=r"has MD5 .*not the manifest's.*Download it again"):
        read_all(root, ["id"])
    with pytest.raises(ExportError, match=r"not complete gzip"):
        read_all(root, ["id"], verify=False)
    # One item where the manifest says two, with an MD5 that matches: a count check catches it.
    data.write_bytes(gzip.compress(json.dumps({"Item": product(1)}).encode() + b"\n"))
    digest = base64.b64encode(hashlib.md5(data.read_bytes()).digest()).decode()
    entry = json.loads((root / "manifest-files.json").read_text())
    (root / "manifest-files.json").write_text(json.dumps({**entry, "md5Checksum": digest}))
    with pytest.raises(ExportError, match=r"holds 1 items, the manifest says 2"):
        read_all(root, ["id"])


def test_lines_that_are_not_full_export_records(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1)], files=1)
    [data] = (root / "data").iterdir()
    for body, match in ((b"{oops\n", "line 1 is not JSON"), (b'{"Keys": {}}\n', "incremental")):
        data.write_bytes(gzip.compress(body))
        with pytest.raises(ExportError, match=match):
            read_all(root, ["id"], verify=False)


def test_ion_exports_are_refused_with_the_fix(tmp_path: Path) -> None:
    root = write_full_export(tmp_path, [product(1)])
    summary = json.loads((root / "manifest-summary.json").read_text())
    (root / "manifest-summary.json").write_text(json.dumps({**summary, "outputFormat": "ION"}))
    with pytest.raises(ExportError, match="ExportFormat='DYNAMODB_JSON'"):
        read_manifest(root)


def test_full_and_incremental_are_not_confused(tmp_path: Path) -> None:
    full = write_full_export(tmp_path / "f", [product(1)])
    changes = [Change(key(1), at(1), new_image=item(1, "1"))]
    incr = write_incremental_export(tmp_path / "i", changes, ["id"], T0, T0 + timedelta(hours=1))
    with pytest.raises(ExportError, match="not an incremental export; read it with read_full"):
        read_incremental_export(full, ["id"])
    with pytest.raises(ExportError, match="not a full export; read it with read_incremental"):
        list(read_full_export(incr, ["id"]))
    [data] = [f.path for f in read_manifest(incr).files if f.item_count]
    data.write_bytes(gzip.compress(json.dumps({"Item": item(1, "1")}).encode() + b"\n"))
    with pytest.raises(ExportError, match=r"line 1 is not an incremental-export record"):
        read_incremental_export(incr, ["id"], verify=False)


# -- the real-AWS request -------------------------------------------------------------------------
def test_export_requests_match_botocore_input_shape() -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    model = botocore.session.get_session().get_service_model("dynamodb")
    shape = model.operation_model("ExportTableToPointInTime").input_shape
    assert shape is not None
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/products"
    full = export_request(arn, "bucket", "zetl", export_time=T0)
    incr = export_request(arn, "bucket", "zetl", incremental=(T0, T0 + timedelta(hours=1)))
    for params in (full, incr):
        validate_parameters(params, shape)
    assert full["ExportType"] == "FULL_EXPORT" and full["ExportTime"] == T0
    assert incr["IncrementalExportSpecification"]["ExportViewType"] == "NEW_AND_OLD_IMAGES"
