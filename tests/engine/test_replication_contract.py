"""The replication contract, run against every relational source (see ``source`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from repl_support import SourceDB, source, uid

__all__ = ["source"]  # the parametrized fixture


@pytest.fixture(autouse=True)
def _end_integrations(source: SourceDB) -> Iterator[None]:
    """Each test ends its integrations: a source has a limited number of replication slots."""
    yield
    rds = source.lab.client("rds")
    for integ in rds.describe_integrations()["Integrations"]:
        if integ["Status"] != "deleting":
            rds.delete_integration(IntegrationIdentifier=integ["IntegrationArn"])
        source.lab.wait_for_status(integ["IntegrationArn"], "deleted", timeout=60)


def test_seed_then_cdc(source: SourceDB) -> None:
    t = uid()
    source.pk_table(t)
    source.execute(
        *(f"INSERT INTO {t} VALUES ({i}, {i * 10}, {i}.50, 'row {i}')" for i in range(1, 51))
    )
    arn = source.integrate(t)
    summary = source.lab.wait(arn, timeout=90)
    assert [x["TableName"] for x in summary["Tables"]] == [source.target_name(t)]
    assert source.target_rows(t) == source.rows(t)
    source.execute(
        f"INSERT INTO {t} VALUES (100, 1, 1.00, 'new')",
        f"UPDATE {t} SET qty = 999, note = 'changed' WHERE id = 2",
        f"DELETE FROM {t} WHERE id = 3",
    )
    source.lab.wait(arn, timeout=60)
    assert source.target_rows(t) == source.rows(t)
    assert (2, 999, Decimal("2.50"), "changed") in source.target_rows(t)


def test_multi_row_transactions_and_key_updates(source: SourceDB) -> None:
    t = uid()
    source.pk_table(t)
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    source.transaction(
        *(f"INSERT INTO {t} VALUES ({i}, {i}, 1.00, 'x')" for i in range(1, 200)),
        f"UPDATE {t} SET qty = qty + 1 WHERE id < 50",
        f"DELETE FROM {t} WHERE id > 150",
    )
    source.execute(f"UPDATE {t} SET id = 1000 WHERE id = 7")  # primary-key update
    source.lab.wait(arn, timeout=60)
    target = source.target_rows(t)
    assert target == source.rows(t)
    ids = [r[0] for r in target]
    assert 1000 in ids and 7 not in ids and len(ids) == len(set(ids))


def test_table_without_primary_key_fails_alone(source: SourceDB) -> None:
    good, bad = uid(), uid("nopk")
    source.pk_table(good)
    source.execute(
        f"CREATE TABLE {bad} (id int, note text)",
        f"INSERT INTO {good} VALUES (1, 1, 1.00, 'a')",
        f"INSERT INTO {bad} VALUES (1, 'a')",
    )
    arn = source.integrate(good, bad)
    summary = source.lab.wait(arn, timeout=90)
    failed = {t["TableName"]: t["Reason"] for t in summary["FailedTables"]}
    assert list(failed) == [source.target_name(bad)]
    assert "primary key" in failed[source.target_name(bad)]
    assert source.target_rows(good) == source.rows(good)


def test_add_column_and_new_table(source: SourceDB) -> None:
    t, later = uid(), uid("late")
    source.pk_table(t)
    source.execute(f"INSERT INTO {t} VALUES (1, 1, 1.00, 'a')")
    prefix = "postgres.public" if source.kind == "postgres" else "shop"
    arn = source.integrate(DataFilter=f"include: {prefix}.{t}, include: {prefix}.{later}")
    source.lab.wait(arn, timeout=90)
    source.execute(
        f"ALTER TABLE {t} ADD COLUMN color varchar(20)",
        f"INSERT INTO {t} VALUES (2, 2, 2.00, 'b', 'red')",
    )
    source.pk_table(later)
    source.execute(f"INSERT INTO {later} VALUES (5, 5, 5.00, 'late')")
    source.lab.wait(arn, timeout=60)
    deadline_rows = source.target_rows(t)
    assert deadline_rows == source.rows(t)
    assert deadline_rows[-1][-1] == "red"
    _eventually(lambda: source.target_rows(later) == source.rows(later))


def test_filter_excludes(source: SourceDB) -> None:
    keep, skip = uid("keep"), uid("skip")
    source.pk_table(keep)
    source.pk_table(skip)
    prefix = "postgres.public" if source.kind == "postgres" else "shop"
    arn = source.integrate(DataFilter=f"include: {prefix}.*, exclude: {prefix}./skip_.*/")
    summary = source.lab.wait(arn, timeout=90)
    names = {t["TableName"] for t in summary["Tables"]}
    assert source.target_name(keep) in names and source.target_name(skip) not in names


def test_truncate_empties_target(source: SourceDB) -> None:
    t = uid()
    source.pk_table(t)
    source.execute(f"INSERT INTO {t} VALUES (1, 1, 1.00, 'a'), (2, 2, 2.00, 'b')")
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    source.execute(f"TRUNCATE TABLE {t}", f"INSERT INTO {t} VALUES (3, 3, 3.00, 'c')")
    source.lab.wait(arn, timeout=60)
    assert source.target_rows(t) == [(3, 3, Decimal("3.00"), "c")]


def test_delete_integration_keeps_data(source: SourceDB) -> None:
    t = uid()
    source.pk_table(t)
    source.execute(f"INSERT INTO {t} VALUES (1, 1, 1.00, 'a')")
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    source.lab.client("rds").delete_integration(IntegrationIdentifier=arn)
    source.lab.wait_for_status(arn, "deleted", timeout=30)
    assert source.target_rows(t) == [(1, 1, Decimal("1.00"), "a")]


def _eventually(check: object, timeout: float = 30) -> None:
    """Wait until ``check()`` is true; until then it may also raise (e.g. a target table that
    does not exist yet: PostgreSQL's new tables arrive with the runner's next discovery)."""
    import time

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached in time (last error: {last!r})")
        time.sleep(0.2)


def test_type_changes_promote_or_resync(source: SourceDB) -> None:
    t = uid()
    source.pk_table(t)
    source.execute(f"INSERT INTO {t} VALUES (1, 1, 1.00, 'a')")
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    seen: list[str] = []
    source.lab.bus.subscribe(lambda e: seen.append(e.detail["To"]), kind="state")
    widen = (
        f"ALTER TABLE {t} ALTER COLUMN qty TYPE bigint"
        if source.kind == "postgres"
        else f"ALTER TABLE {t} MODIFY qty bigint"
    )
    source.execute(widen, f"INSERT INTO {t} VALUES (2, 5000000000, 2.00, 'big')")
    source.lab.wait(arn, timeout=60)
    assert source.target_rows(t) == source.rows(t)
    to_text = (
        f"ALTER TABLE {t} ALTER COLUMN qty TYPE text USING qty::text"
        if source.kind == "postgres"
        else f"ALTER TABLE {t} MODIFY qty varchar(40)"
    )
    source.execute(to_text, f"INSERT INTO {t} VALUES (3, 'three', 3.00, 'txt')")
    _eventually(lambda: source.target_rows(t) == source.rows(t), timeout=60)
    source.lab.wait(arn, timeout=60)
    assert "SYNCING" in seen and seen[-1] == "ACTIVE"


def test_drop_table_marks_deleted(source: SourceDB) -> None:
    a, b = uid(), uid()
    source.pk_table(a)
    source.pk_table(b)
    arn = source.integrate(a, b)
    source.lab.wait(arn, timeout=90)
    source.execute(f"DROP TABLE {b}")
    source.lab.refresh_now(arn)
    _eventually(
        lambda: (
            {t["TableName"]: t["State"] for t in source.lab.table_states(arn)}.get(
                source.target_name(b)
            )
            == "Deleted"
        )
    )


def test_modifying_the_filter_is_retroactive(source: SourceDB) -> None:
    a, b = uid(), uid()
    source.pk_table(a)
    source.pk_table(b)
    source.execute(f"INSERT INTO {b} VALUES (1, 1, 1.00, 'b')")
    arn = source.integrate(a)
    source.lab.wait(arn, timeout=90)
    source.lab.client("rds").modify_integration(
        IntegrationIdentifier=arn, DataFilter=source.filter_for(b)
    )
    source.lab.wait_for_status(arn, "active", timeout=30)
    source.lab.refresh_now(arn)
    _eventually(
        lambda: (
            {t["TableName"]: t["State"] for t in source.lab.table_states(arn)}.get(
                source.target_name(a)
            )
            == "Deleted"
        )
    )
    _eventually(lambda: source.target_rows(b) == source.rows(b))


def test_unchanged_toast_values_are_kept(source: SourceDB) -> None:
    if source.kind != "postgres":
        return  # TOAST is PostgreSQL's; MySQL's FULL row images always carry every column
    import secrets

    t = uid()
    source.pk_table(t)
    big = secrets.token_hex(8000)  # incompressible, so PostgreSQL stores it out of line
    source.execute(f"INSERT INTO {t} VALUES (1, 1, 1.00, '{big}')")
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    source.execute(
        f"INSERT INTO {t} VALUES (2, 2, 2.00, '{big}')",
        f"UPDATE {t} SET qty = 10 WHERE id IN (1, 2)",
    )
    source.lab.wait(arn, timeout=60)
    assert source.target_rows(t) == source.rows(t)
    assert all(r[3] == big for r in source.target_rows(t))


def _unholdable(source: SourceDB, t: str, postgres_value: str) -> tuple[list[str], str]:
    """Statements that create ``t`` and insert rows 1-3 into it, row 2 holding values the target
    cannot hold, and the text of such a value that the dead letter's reason quotes.

    PostgreSQL: ``postgres_value`` in an unconstrained numeric (decimal(38, 10) in the target).
    MariaDB, under ALLOW_INVALID_DATES: February 31st in a DATE, a zero month in a DATETIME; row 3
    holds the zero date, which replicates as null; row 1 a leap day and a time before 1970.
    """
    if source.kind == "postgres":
        create = f"CREATE TABLE {t} (id bigint PRIMARY KEY, v numeric)"
        rows = f"(1, 1.5), (2, {postgres_value}), (3, 3)"
        return [create, f"INSERT INTO {t} VALUES {rows}"], postgres_value.strip("'")
    create = f"CREATE TABLE {t} (id bigint PRIMARY KEY, v date, w datetime(6))"
    rows = (
        "(1, '2024-02-29', '1969-12-31 23:59:59.5'), "
        "(2, '2024-02-31', '2024-00-10 08:00:00.25'), "
        "(3, '0000-00-00', '0000-00-00 00:00:00')"
    )
    session = "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'"
    return [create, session, f"INSERT INTO {t} VALUES {rows}"], "2024-02-31"


def test_values_the_target_cannot_hold_are_dead_lettered(source: SourceDB) -> None:
    t = uid()
    create, *insert = _unholdable(source, t, "1e40")[0]
    source.execute(create)
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    source.execute(*insert)
    source.lab.wait(arn, timeout=60)
    target = source.target_rows(t)
    assert [r[0] for r in target] == [1, 3] and target[0] == source.rows(t)[0]
    letters = source.lab.sql(
        "SELECT table_name, reason, record FROM lakehouse_zetl_system.dead_letters "
        f"WHERE table_name = '{source.target_name(t)}'"
    ).fetchall()
    assert len(letters) == 1 and "column v (" in letters[0][1] and '"id": 2' in letters[0][2]


def test_unrepresentable_values_in_the_initial_copy_are_dead_lettered(source: SourceDB) -> None:
    t = uid()
    statements, shown = _unholdable(source, t, "'NaN'")
    source.execute(*statements)
    arn = source.integrate(t)
    source.lab.wait(arn, timeout=90)
    target = source.target_rows(t)
    assert [r[0] for r in target] == [1, 3] and target[0] == source.rows(t)[0]
    letters = source.lab.sql(
        "SELECT reason, record FROM lakehouse_zetl_system.dead_letters "
        f"WHERE table_name = '{source.target_name(t)}'"
    ).fetchall()
    assert len(letters) == 1 and shown in letters[0][0] and '"id": 2' in letters[0][1]
