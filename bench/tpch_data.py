"""TPC-H-like data for bench/query_tpch.py: schema, a seeded generator, the CDC workload, queries.

Not the TPC-H ``dbgen`` (DuckDB's ``tpch`` extension needs the internet): the eight tables with
TPC-H's columns, key relationships and value distributions where the chosen queries look at them
(dates, flags, segments, nations/regions, prices = quantity x part retail price), generated with
numpy from a seed, column by column (no per-row loop for lineitem or orders). Scale factor 1 has
TPC-H's cardinalities (1.5M orders, ~6M lineitems); the benchmark's default 0.25 gives ~1.5M
lineitems. Comments and names come from small pools of seeded strings, so text columns are
realistic in width, not in variety.

The CDC workload is TPC-H's refresh functions (RF1: new orders with their lines, RF2: delete
orders with their lines) plus the updates a shop's order pipeline makes (line status and return
flags of shipped lines, order status, customer balances, part prices), committed as a few dozen
transactions while the integration replicates: the Iceberg tables end up with position deletes.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

TABLES = ("region", "nation", "supplier", "customer", "part", "orders", "lineitem")
DDL = {
    "region": "r_regionkey int PRIMARY KEY, r_name text NOT NULL, r_comment text",
    "nation": "n_nationkey int PRIMARY KEY, n_name text NOT NULL, n_regionkey int NOT NULL, "
    "n_comment text",
    "supplier": "s_suppkey int PRIMARY KEY, s_name text NOT NULL, s_address text NOT NULL, "
    "s_nationkey int NOT NULL, s_phone text NOT NULL, s_acctbal numeric(15,2) NOT NULL, "
    "s_comment text",
    "customer": "c_custkey int PRIMARY KEY, c_name text NOT NULL, c_address text NOT NULL, "
    "c_nationkey int NOT NULL, c_phone text NOT NULL, c_acctbal numeric(15,2) NOT NULL, "
    "c_mktsegment text NOT NULL, c_comment text",
    "part": "p_partkey int PRIMARY KEY, p_name text NOT NULL, p_mfgr text NOT NULL, "
    "p_brand text NOT NULL, p_type text NOT NULL, p_size int NOT NULL, "
    "p_container text NOT NULL, p_retailprice numeric(15,2) NOT NULL, p_comment text",
    "orders": "o_orderkey bigint PRIMARY KEY, o_custkey int NOT NULL, "
    "o_orderstatus text NOT NULL, o_totalprice numeric(15,2) NOT NULL, o_orderdate date NOT NULL, "
    "o_orderpriority text NOT NULL, o_clerk text NOT NULL, o_shippriority int NOT NULL, "
    "o_comment text",
    "lineitem": "l_orderkey bigint NOT NULL, l_linenumber int NOT NULL, l_partkey int NOT NULL, "
    "l_suppkey int NOT NULL, l_quantity numeric(15,2) NOT NULL, "
    "l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL, "
    "l_tax numeric(15,2) NOT NULL, l_returnflag text NOT NULL, l_linestatus text NOT NULL, "
    "l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL, "
    "l_shipinstruct text NOT NULL, l_shipmode text NOT NULL, l_comment text, "
    "PRIMARY KEY (l_orderkey, l_linenumber)",
}

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = [  # TPC-H's 25 nations with their regions
    ("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4),
    ("ETHIOPIA", 0), ("FRANCE", 3), ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2),
    ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4), ("KENYA", 0), ("MOROCCO", 0),
    ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3), ("SAUDI ARABIA", 4),
    ("VIETNAM", 2), ("RUSSIA", 3), ("UNITED KINGDOM", 3), ("UNITED STATES", 1),
]  # fmt: skip
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
SHIPMODES = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"]
INSTRUCTS = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
TYPES = (
    ["STANDARD", "SMALL", "MEDIUM", "LARGE", "ECONOMY", "PROMO"],
    ["ANODIZED", "BURNISHED", "PLATED", "POLISHED", "BRUSHED"],
    ["TIN", "NICKEL", "BRASS", "STEEL", "COPPER"],
)
CONTAINERS = (
    ["SM", "LG", "MED", "JUMBO", "WRAP"],
    ["CASE", "BOX", "BAG", "JAR", "PKG", "PACK", "CAN", "DRUM"],
)
# Word pools (TPC-H's P_NAME colours; comment words in TPC-H's style).
COLORS = (  # noqa: SIM905 - a word list reads better as text
    "almond antique aquamarine azure beige bisque black blanched blue blush brown burlywood "
    "burnished chartreuse chiffon chocolate coral cornflower cornsilk cream cyan dark deep dim "
    "dodger drab firebrick floral forest frosted gainsboro ghost goldenrod green grey honeydew "
    "hot indian ivory khaki lace lavender lawn lemon light lime linen magenta maroon medium "
    "metallic midnight mint misty moccasin navajo navy olive orange orchid pale papaya peach "
    "peru pink plum powder puff purple red rose rosy royal saddle salmon sandy seashell sienna "
    "sky slate smoke snow spring steel tan thistle tomato turquoise violet wheat white yellow"
).split()
WORDS = (  # noqa: SIM905
    "furiously quickly carefully blithely slyly ironic final regular special pending express "
    "bold even silent unusual packages requests accounts deposits foxes ideas theodolites "
    "pinto beans instructions dependencies excuses platelets asymptotes courts dolphins "
    "sleep wake are cajole haggle nag use boost affix detect integrate among across about"
).split()

EPOCH = np.datetime64("1970-01-01", "D")
START, CURRENT = np.datetime64("1992-01-01", "D"), np.datetime64("1995-06-17", "D")
ORDER_DAYS = int((np.datetime64("1998-08-02", "D") - START).astype(int)) - 151


def _decimal(cents: np.ndarray) -> pa.Array:
    """int64 hundredths → decimal128(15, 2), built from the buffer (two's-complement words)."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = cents, cents >> 63
    buffer = pa.py_buffer(words.tobytes())
    return pa.Array.from_buffers(pa.decimal128(15, 2), len(cents), [None, buffer])


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array((days - EPOCH).astype(np.int32), pa.int32()).cast(pa.date32())


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pa.Array:
    return pa.array(pool).take(pa.array(rng.integers(0, len(pool), n)))


def _comments(rng: np.random.Generator, n: int, pool_size: int = 4096) -> pa.Array:
    pool = [
        " ".join(rng.choice(WORDS, rng.integers(3, 9)).tolist()) for _ in range(pool_size)
    ]  # fmt: skip
    return _pick(rng, pool, n)


def _retail_cents(partkey: np.ndarray) -> np.ndarray:
    """TPC-H's P_RETAILPRICE formula, in cents."""
    return 90000 + (partkey // 10) % 20001 + 100 * (partkey % 1000)


class Generator:
    """Seeded TPC-H-like tables at scale factor ``sf`` (Arrow, ready for COPY)."""

    def __init__(self, sf: float, seed: int = 20261122) -> None:
        self.sf, self.seed = sf, seed
        self.n_orders = max(1000, int(1_500_000 * sf))
        self.n_customers = max(100, int(150_000 * sf))
        self.n_parts = max(200, int(200_000 * sf))
        self.n_suppliers = max(10, int(10_000 * sf))

    def tables(self) -> dict[str, pa.Table]:
        rng = np.random.default_rng(self.seed)
        out = {
            "region": pa.table(
                {
                    "r_regionkey": pa.array(range(5), pa.int32()),
                    "r_name": REGIONS,
                    "r_comment": _comments(rng, 5),
                }
            ),
            "nation": pa.table(
                {
                    "n_nationkey": pa.array(range(25), pa.int32()),
                    "n_name": [n for n, _ in NATIONS],
                    "n_regionkey": pa.array([r for _, r in NATIONS], pa.int32()),
                    "n_comment": _comments(rng, 25),
                }
            ),
            "supplier": self._parties(rng, "s", "Supplier", self.n_suppliers),
            "customer": self._parties(rng, "c", "Customer", self.n_customers),
            "part": self._parts(rng),
        }
        out["orders"], out["lineitem"] = self.orders(rng, 1, self.n_orders)
        return out

    def _parties(self, rng: np.random.Generator, p: str, kind: str, n: int) -> pa.Table:
        keys = np.arange(1, n + 1)
        nations = rng.integers(0, 25, n)
        cols: dict[str, Any] = {
            f"{p}_{'custkey' if p == 'c' else 'suppkey'}": pa.array(keys, pa.int32()),
            f"{p}_name": [f"{kind}#{k:09d}" for k in keys],
            f"{p}_address": _comments(rng, n, 1024),
            f"{p}_nationkey": pa.array(nations, pa.int32()),
            f"{p}_phone": [
                f"{c + 10}-{a}-{b}-{d}"
                for c, a, b, d in zip(
                    nations.tolist(),
                    rng.integers(100, 1000, n).tolist(),
                    rng.integers(100, 1000, n).tolist(),
                    rng.integers(1000, 10000, n).tolist(),
                    strict=True,
                )
            ],
            f"{p}_acctbal": _decimal(rng.integers(-99_999, 1_000_000, n)),
        }
        if p == "c":
            cols["c_mktsegment"] = _pick(rng, SEGMENTS, n)
        cols[f"{p}_comment"] = _comments(rng, n)
        return pa.table(cols)

    def _parts(self, rng: np.random.Generator) -> pa.Table:
        n = self.n_parts
        keys = np.arange(1, n + 1)
        mfgr, brand = rng.integers(1, 6, n).tolist(), rng.integers(1, 6, n).tolist()
        types = [f"{a} {b} {c}" for a in TYPES[0] for b in TYPES[1] for c in TYPES[2]]
        containers = [f"{a} {b}" for a in CONTAINERS[0] for b in CONTAINERS[1]]
        names = rng.integers(0, len(COLORS), (n, 5))
        return pa.table(
            {
                "p_partkey": pa.array(keys, pa.int32()),
                "p_name": [" ".join(COLORS[i] for i in row) for row in names.tolist()],
                "p_mfgr": [f"Manufacturer#{m}" for m in mfgr],
                "p_brand": [f"Brand#{m}{b}" for m, b in zip(mfgr, brand, strict=True)],
                "p_type": _pick(rng, types, n),
                "p_size": pa.array(rng.integers(1, 51, n), pa.int32()),
                "p_container": _pick(rng, containers, n),
                "p_retailprice": _decimal(_retail_cents(keys)),
                "p_comment": _comments(rng, n, 1024),
            }
        )

    def orders(self, rng: np.random.Generator, first: int, n: int) -> tuple[pa.Table, pa.Table]:
        """``n`` orders with keys from ``first`` and their 1-7 lines each."""
        keys = np.arange(first, first + n, dtype=np.int64)
        odate = START + rng.integers(0, ORDER_DAYS, n).astype("timedelta64[D]")
        lines = rng.integers(1, 8, n)
        m = int(lines.sum())
        owner = np.repeat(np.arange(n), lines)
        linenumber = np.arange(m) - np.repeat(np.cumsum(lines) - lines, lines) + 1
        partkey = rng.integers(1, self.n_parts + 1, m)
        quantity = rng.integers(1, 51, m)
        price = quantity * _retail_cents(partkey)
        discount, tax = rng.integers(0, 11, m), rng.integers(0, 9, m)
        ship = odate[owner] + rng.integers(1, 122, m).astype("timedelta64[D]")
        commit = odate[owner] + rng.integers(30, 91, m).astype("timedelta64[D]")
        receipt = ship + rng.integers(1, 31, m).astype("timedelta64[D]")
        returned = np.where(rng.integers(0, 2, m) == 0, "R", "A")
        flag = np.where(receipt <= CURRENT, returned, "N")
        shipped = ship <= CURRENT
        lineitem = pa.table(
            {
                "l_orderkey": pa.array(keys[owner]),
                "l_linenumber": pa.array(linenumber, pa.int32()),
                "l_partkey": pa.array(partkey, pa.int32()),
                "l_suppkey": pa.array(rng.integers(1, self.n_suppliers + 1, m), pa.int32()),
                "l_quantity": _decimal(quantity * 100),
                "l_extendedprice": _decimal(price),
                "l_discount": _decimal(discount),
                "l_tax": _decimal(tax),
                "l_returnflag": pa.array(flag.tolist()),
                "l_linestatus": pa.array(np.where(shipped, "F", "O").tolist()),
                "l_shipdate": _dates(ship),
                "l_commitdate": _dates(commit),
                "l_receiptdate": _dates(receipt),
                "l_shipinstruct": _pick(rng, INSTRUCTS, m),
                "l_shipmode": _pick(rng, SHIPMODES, m),
                "l_comment": _comments(rng, m),
            }
        )
        charge = price * (100 + tax) * (100 - discount) / 10_000
        total = np.rint(np.bincount(owner, weights=charge, minlength=n)).astype(np.int64)
        done = np.bincount(owner, weights=shipped, minlength=n)
        status = np.where(done == lines, "F", np.where(done == 0, "O", "P"))
        clerks = [f"Clerk#{k:09d}" for k in range(1, max(10, int(1000 * self.sf)) + 1)]
        orders = pa.table(
            {
                "o_orderkey": pa.array(keys),
                "o_custkey": pa.array(rng.integers(1, self.n_customers + 1, n), pa.int32()),
                "o_orderstatus": pa.array(status.tolist()),
                "o_totalprice": _decimal(total),
                "o_orderdate": _dates(odate),
                "o_orderpriority": _pick(rng, PRIORITIES, n),
                "o_clerk": _pick(rng, clerks, n),
                "o_shippriority": pa.array(np.zeros(n, np.int32)),
                "o_comment": _comments(rng, n),
            }
        )
        return orders, lineitem


# -- PostgreSQL --------------------------------------------------------------------------------


def copy_into(cur: Any, table: str, data: pa.Table) -> None:
    """``COPY table FROM STDIN`` of ``data`` as CSV (pyarrow writes it, PostgreSQL parses it)."""
    buf = io.BytesIO()
    pacsv.write_csv(data, buf, pacsv.WriteOptions(include_header=False))
    buf.seek(0)
    cols = ", ".join(data.column_names)
    cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)", buf)


def create_and_load(conn: Any, tables: dict[str, pa.Table]) -> dict[str, int]:
    """Create the schema in ``conn``'s database and COPY every table in; returns row counts."""
    with conn.cursor() as cur:
        for name in reversed(TABLES):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
        for name in TABLES:
            cur.execute(f"CREATE TABLE {name} ({DDL[name]})")
            copy_into(cur, name, tables[name])
        cur.execute("VACUUM ANALYZE")
        cur.execute("CHECKPOINT")
    return {name: tables[name].num_rows for name in TABLES}


def cdc_workload(
    conn: Any, gen: Generator, rounds: int = 10, seed: int = 7
) -> tuple[dict[str, int], int]:
    """TPC-H RF1/RF2 and order-pipeline updates, ``rounds`` x 5 transactions.

    Per round: update the status and return flag of 0.2 % of the lines (every line of the
    orders with ``o_orderkey % 500 = round``), the status of 0.4 % of the orders, 0.1 % of the
    customers' balances and a few part prices; delete 0.05 % of the orders with their lines
    (RF2); insert as many new orders with their lines (RF1). Returns (rows changed per kind,
    transactions).
    """
    rng = np.random.default_rng(seed)
    counts = {"lineitem updated": 0, "orders updated": 0, "customer updated": 0}
    counts |= {"part updated": 0, "orders deleted": 0, "lineitem deleted": 0}
    counts |= {"orders inserted": 0, "lineitem inserted": 0}
    next_key, per_round = gen.n_orders + 1, max(1, gen.n_orders // 2000)
    transactions = 0
    conn.autocommit = False
    with conn.cursor() as cur:
        for r in range(rounds):
            statements = [
                (
                    "lineitem updated",
                    "UPDATE lineitem SET l_linestatus = 'F', l_receiptdate = l_receiptdate + 1, "
                    "l_returnflag = CASE WHEN l_returnflag = 'N' THEN 'R' ELSE l_returnflag END "
                    f"WHERE l_orderkey % 500 = {r}",
                ),
                (
                    "orders updated",
                    "UPDATE orders SET o_orderstatus = 'F', o_comment = 'status updated' "
                    f"WHERE o_orderkey % 250 = {r}",
                ),
                (
                    "customer updated",
                    f"UPDATE customer SET c_acctbal = c_acctbal + 10 WHERE c_custkey % 1000 = {r}",
                ),
                (
                    "part updated",
                    "UPDATE part SET p_retailprice = p_retailprice * 1.01 "
                    f"WHERE p_partkey % 2000 = {r}",
                ),
            ]
            for kind, sql in statements:
                cur.execute(sql)
                counts[kind] += cur.rowcount
                conn.commit()
                transactions += 1
            # RF2: orders with their lines, one transaction.
            cur.execute(
                f"DELETE FROM lineitem WHERE l_orderkey % 2000 = {1000 + r} "
                f"AND l_orderkey <= {gen.n_orders}"
            )
            counts["lineitem deleted"] += cur.rowcount
            cur.execute(
                f"DELETE FROM orders WHERE o_orderkey % 2000 = {1000 + r} "
                f"AND o_orderkey <= {gen.n_orders}"
            )
            counts["orders deleted"] += cur.rowcount
            conn.commit()
            # RF1: new orders with their lines, one transaction.
            orders, lineitem = gen.orders(rng, next_key, per_round)
            next_key += per_round
            copy_into(cur, "orders", orders)
            copy_into(cur, "lineitem", lineitem)
            counts["orders inserted"] += orders.num_rows
            counts["lineitem inserted"] += lineitem.num_rows
            conn.commit()
            transactions += 2
    conn.autocommit = True
    return counts, transactions


# -- queries -----------------------------------------------------------------------------------

# TPC-H queries adapted to DuckDB syntax and this generator (parameters: TPC-H's validation
# values). ``{lineitem}`` etc. are replaced by each contender's table names.
QUERIES: dict[str, str] = {
    "scan": "SELECT count(*), sum(l_extendedprice), sum(l_quantity) FROM {lineitem}",
    "Q1": """
SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty,
       sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price,
       avg(l_discount) AS avg_disc, count(*) AS count_order
FROM {lineitem}
WHERE l_shipdate <= DATE '1998-12-01' - INTERVAL 90 DAY
GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus""",
    "Q3": """
SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate,
       o_shippriority
FROM {customer}, {orders}, {lineitem}
WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate < DATE '1995-03-15' AND l_shipdate > DATE '1995-03-15'
GROUP BY l_orderkey, o_orderdate, o_shippriority
ORDER BY revenue DESC, o_orderdate, l_orderkey LIMIT 10""",
    "Q5": """
SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM {customer}, {orders}, {lineitem}, {supplier}, {nation}, {region}
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND l_suppkey = s_suppkey
  AND c_nationkey = s_nationkey AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey
  AND r_name = 'ASIA' AND o_orderdate >= DATE '1994-01-01' AND o_orderdate < DATE '1995-01-01'
GROUP BY n_name ORDER BY revenue DESC""",
    "Q6": """
SELECT sum(l_extendedprice * l_discount) AS revenue
FROM {lineitem}
WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01'
  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24""",
    "Q10": """
SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue, c_acctbal,
       n_name, c_address, c_phone
FROM {customer}, {orders}, {lineitem}, {nation}
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate >= DATE '1993-10-01' AND o_orderdate < DATE '1994-01-01'
  AND l_returnflag = 'R' AND c_nationkey = n_nationkey
GROUP BY c_custkey, c_name, c_acctbal, c_phone, n_name, c_address
ORDER BY revenue DESC, c_custkey LIMIT 20""",
    "Q12": """
SELECT l_shipmode,
       sum(CASE WHEN o_orderpriority IN ('1-URGENT', '2-HIGH') THEN 1 ELSE 0 END) AS high,
       sum(CASE WHEN o_orderpriority NOT IN ('1-URGENT', '2-HIGH') THEN 1 ELSE 0 END) AS low
FROM {orders}, {lineitem}
WHERE o_orderkey = l_orderkey AND l_shipmode IN ('MAIL', 'SHIP')
  AND l_commitdate < l_receiptdate AND l_shipdate < l_commitdate
  AND l_receiptdate >= DATE '1994-01-01' AND l_receiptdate < DATE '1995-01-01'
GROUP BY l_shipmode ORDER BY l_shipmode""",
    "Q14": """
SELECT 100.00 * sum(CASE WHEN p_type LIKE 'PROMO%' THEN l_extendedprice * (1 - l_discount)
                         ELSE 0 END) / sum(l_extendedprice * (1 - l_discount)) AS promo_revenue
FROM {lineitem}, {part}
WHERE l_partkey = p_partkey
  AND l_shipdate >= DATE '1995-09-01' AND l_shipdate < DATE '1995-10-01'""",
    "Q18": """
SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity) AS qty
FROM {customer}, {orders}, {lineitem}
WHERE o_orderkey IN (SELECT l_orderkey FROM {lineitem} GROUP BY l_orderkey
                     HAVING sum(l_quantity) > 300)
  AND c_custkey = o_custkey AND o_orderkey = l_orderkey
GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
ORDER BY o_totalprice DESC, o_orderdate, o_orderkey LIMIT 100""",
}
KINDS = {  # what each query exercises, for the report
    "scan": "full scan, 3 aggregates",
    "Q1": "scan + filter + group by (4 groups)",
    "Q3": "3-way join, filters, top 10",
    "Q5": "6-way join, 1-year filter",
    "Q6": "selective filter + aggregate",
    "Q10": "4-way join, group by customer, top 20",
    "Q12": "2-way join, column-to-column filters",
    "Q14": "join with part, 1-month filter",
    "Q18": "group by all orders (HAVING) + 3-way join",
}
