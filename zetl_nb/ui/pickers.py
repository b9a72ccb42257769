"""What the pickers offer, read from the Lab through the API a user would call.

Source types are the console's. A SaaS type appears here once zetl_nb has a SaaS source to
replicate from: until then it would be a dead option, so it is not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..lab import Lab


@dataclass(frozen=True)
class SourceType:
    """One kind of source: ``key``, the console's label, the service whose
    ``create_integration`` creates it, and the database engine for relational sources."""

    key: str
    label: str
    service: str
    engine: str | None = None

    @property
    def relational(self) -> bool:
        """Aurora/RDS sources: continuous, with a DataFilter, created through RDS."""
        return self.engine is not None


#: The source types the wizard offers, in the console's order.
SOURCE_TYPES: tuple[SourceType, ...] = (
    SourceType("dynamodb", "Amazon DynamoDB", "glue"),
    SourceType("mysql", "Aurora/RDS MySQL", "rds", "mysql"),
    SourceType("postgres", "Aurora/RDS PostgreSQL", "rds", "postgres"),
)


def source_type(key: str | None) -> SourceType | None:
    """The source type called ``key`` (None if there is none)."""
    return next((t for t in SOURCE_TYPES if t.key == key), None)


@dataclass(frozen=True)
class Option:
    """One entry of a picker: what it shows and the ARN it stands for."""

    label: str
    value: str


def dynamodb_tables(lab: Lab) -> list[Option]:
    """Every table of the Lab's DynamoDB (``dynamodb.list_tables`` / ``describe_table``)."""
    ddb = lab.client("dynamodb")
    names: list[str] = []
    params: dict[str, str] = {}
    while True:
        page = ddb.list_tables(**params)
        names += page.get("TableNames", [])
        if not page.get("LastEvaluatedTableName"):
            break
        params = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
    out = []
    for name in sorted(names):
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        out.append(Option(name, str(arn)))
    return out


def rds_clusters(lab: Lab, engine: str) -> list[Option]:
    """The registered databases (``lab.databases()``) whose engine is ``engine``."""
    out = []
    for name, arn in sorted(lab.databases().items()):
        if database_engine(lab, name) == engine:
            out.append(Option(name, arn))
    return out


def database_engine(lab: Lab, name: str) -> str:
    """``postgres`` or ``mysql``: the engine of registered database ``name``.

    The embedded cluster is PostgreSQL (asked without starting it); others by their URL.
    """
    if lab.config.embedded_postgres and name == lab.config.embedded_cluster:
        return "postgres"
    scheme = lab.database_url(name).split("://", 1)[0].lower()
    return "postgres" if scheme.startswith("postgres") else "mysql"


def glue_databases(lab: Lab) -> list[Option]:
    """Every Glue database (``glue.get_databases``) as a target ARN."""
    from ..core.arn import glue_database_arn

    glue = lab.client("glue")
    names: list[str] = []
    params: dict[str, str] = {}
    while True:
        page = glue.get_databases(**params)
        names += [d["Name"] for d in page.get("DatabaseList", [])]
        if not page.get("NextToken"):
            break
        params = {"NextToken": page["NextToken"]}
    region, account = lab.config.region, lab.config.account_id
    return [Option(n, glue_database_arn(region, account, n)) for n in sorted(names)]


def name_of(arn: str | None) -> str:
    """The short name at the end of an ARN (table, cluster, database)."""
    if not arn:
        return ""
    tail = arn.rsplit(":", 1)[-1]
    return tail.rsplit("/", 1)[-1]
