"""``CreateIntegrationState``: the create-integration wizard as plain data.

The console's steps — source type → source and target → output settings → security → details
→ review and create. Every field change re-validates with the API's own checks (a
:class:`~zetl_nb.ui.dryrun.DryRun` of the calls the wizard will make), so the messages are
exactly what ``glue.create_integration`` would answer. Create makes the same calls a notebook
cell would; afterwards the state follows the integration's status and offers "Fix it for me".

>>> w = CreateIntegrationState(lab)                                    # doctest: +SKIP
>>> w.set("source_type", "dynamodb"); w.next()
>>> w.set("source_arn", table_arn); w.set("target_arn", db_arn); w.next()
>>> w.set("unnest_spec", "TOPLEVEL"); w.next(); w.next()
>>> w.set("name", "products-to-lakehouse"); w.next()
>>> w.create()                                                         # the integration ARN
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .base import Issue, Observable, api_error, is_api_error
from .created import CreatedIntegration
from .dryrun import DryRun
from .fixit import FixIt
from .pickers import (
    SOURCE_TYPES,
    Option,
    SourceType,
    dynamodb_tables,
    glue_databases,
    name_of,
    rds_clusters,
    source_type,
)
from .requests import Call, create_calls, partition_spec

if TYPE_CHECKING:
    from ..lab import Lab


@dataclass(frozen=True)
class Step:
    """One wizard step: its key, the console's title and the fields it shows."""

    key: str
    title: str
    fields: tuple[str, ...]


STEPS: tuple[Step, ...] = (
    Step("source_type", "Choose source type", ("source_type",)),
    Step("source_target", "Source and target", ("source_arn", "target_arn", "new_database")),
    Step(
        "output",
        "Output settings",
        ("table_name", "unnest_spec", "partitions", "target_table_name", "data_filter"),
    ),
    Step("security", "Security", ("kms_key_id",)),
    Step("details", "Integration details", ("name", "description", "refresh_interval")),
    Step("review", "Review and create", ("",)),
)
STEP_OF = {f: i for i, s in enumerate(STEPS) for f in s.fields}
STEP_OF["continuous_sync"] = STEP_OF["name"]
STEP_OF["new_database_location"] = STEP_OF["new_database"]

#: Fields :meth:`CreateIntegrationState.set` accepts (partition keys have their own methods).
FIELDS = frozenset(
    {
        "source_type",
        "source_arn",
        "target_arn",
        "new_database",
        "new_database_location",
        "table_name",
        "unnest_spec",
        "target_table_name",
        "data_filter",
        "kms_key_id",
        "name",
        "description",
        "refresh_interval",
        "continuous_sync",
    }
)
_TABLE_FIELDS = ("unnest_spec", "partitions", "target_table_name")  # table properties


@dataclass
class PartitionKey:
    """One partition key: the source column, its function and (for time functions) how the
    column encodes time. Empty strings mean "not given"."""

    field_name: str = ""
    function: str = "identity"
    conversion: str = ""


@dataclass(eq=False)
class CreateIntegrationState(Observable):
    """The wizard's state. Change it with :meth:`set`, :meth:`next`, :meth:`back`, the
    partition-key methods and :meth:`create`; read :attr:`issues` for inline messages."""

    lab: Lab = field(repr=False)
    step: int = 0
    source_type: str | None = None
    source_arn: str | None = None
    target_arn: str | None = None
    new_database: str = ""
    new_database_location: str = ""
    table_name: str = ""
    unnest_spec: str = ""
    partitions: list[PartitionKey] = field(default_factory=list)
    target_table_name: str = ""
    data_filter: str = ""
    kms_key_id: str = ""
    name: str = ""
    description: str = ""
    refresh_interval: str = ""
    continuous_sync: bool = True
    #: Inline messages by field (``""``: the step as a whole), the API's own words.
    issues: dict[str, Issue] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    #: After create: the integration, its status and Errors, and "Fix it for me".
    created: CreatedIntegration | None = None
    notice: str = ""

    def __post_init__(self) -> None:
        Observable.__init__(self)
        self._dry = DryRun(self.lab)
        self._options: dict[str, list[Option]] = {}
        self._placeholder = f"wizard-check-{uuid.uuid4().hex[:8]}"

    # -- what the steps offer -----------------------------------------------------------------
    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step, in order."""
        return STEPS

    @property
    def current(self) -> Step:
        """The step shown now."""
        return STEPS[self.step]

    def source_types(self) -> tuple[SourceType, ...]:
        """The source types to pick from (SaaS only once a SaaS source exists)."""
        return SOURCE_TYPES

    @property
    def kind(self) -> SourceType | None:
        """The chosen source type."""
        return source_type(self.source_type)

    def source_options(self) -> list[Option]:
        """Sources of the chosen type: DynamoDB tables or registered RDS clusters."""
        kind = self.kind
        if kind is None:
            return []
        if kind.key not in self._options:
            if kind.relational:
                assert kind.engine is not None
                self._options[kind.key] = rds_clusters(self.lab, kind.engine)
            else:
                self._options[kind.key] = dynamodb_tables(self.lab)
        return self._options[kind.key]

    def target_options(self) -> list[Option]:
        """Glue databases to replicate into."""
        if "targets" not in self._options:
            self._options["targets"] = glue_databases(self.lab)
        return self._options["targets"]

    def reload(self) -> None:
        """Read the pickers' options from the Lab again."""
        self._options.clear()
        self.changed()

    # -- changing fields ----------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Set field ``name`` (see :data:`FIELDS`) and validate inline."""
        if name not in FIELDS:
            raise AttributeError(f"the wizard has no field '{name}'; fields: {sorted(FIELDS)}")
        if getattr(self, name) == value:
            return
        setattr(self, name, value)
        self.touched.add(name)
        if name == "source_type":
            self.source_arn = None
            self.data_filter = ""
            self.table_name = ""
        if name in ("source_arn", "target_arn"):
            self._source_or_target_changed()
        if name in ("target_arn", "new_database", "new_database_location"):
            self.issues.pop("new_database", None)  # a failed create_database is history now
        self.validate()

    def add_partition(
        self, field_name: str = "", function: str = "identity", conversion: str = ""
    ) -> None:
        """Add a partition key."""
        self.partitions.append(PartitionKey(field_name, function, conversion))
        self._partitions_changed()

    def set_partition(self, index: int, **values: str) -> None:
        """Change partition key ``index`` (``field_name``, ``function``, ``conversion``)."""
        key = self.partitions[index]
        for attr, value in values.items():
            if attr not in ("field_name", "function", "conversion"):
                raise AttributeError(f"a partition key has no '{attr}'")
            setattr(key, attr, value)
        self._partitions_changed()

    def remove_partition(self, index: int) -> None:
        """Remove partition key ``index``."""
        del self.partitions[index]
        self._partitions_changed()

    def _partitions_changed(self) -> None:
        self.touched.add("partitions")
        self.validate()

    def _source_or_target_changed(self) -> None:
        kind = self.kind
        if kind is not None and not kind.relational:
            self.table_name = name_of(self.source_arn)
        if self.source_arn and self.target_arn and not (self.touched & set(_TABLE_FIELDS)):
            self._load_table_properties()

    def _load_table_properties(self) -> None:
        """Show the target's existing table properties for this source table, if any."""
        if not self.table_name or not self.target_arn:
            return
        doc = self._table_properties()
        config = (doc or {}).get("TargetTableConfig") or {}
        self.unnest_spec = str(config.get("UnnestSpec") or "")
        self.target_table_name = str(config.get("TargetTableName") or "")
        self.partitions = [
            PartitionKey(
                p.get("FieldName", ""),
                p.get("FunctionSpec", "identity"),
                p.get("ConversionSpec", ""),
            )
            for p in config.get("PartitionSpec") or []
        ]

    def _table_properties(self) -> dict[str, Any] | None:
        glue = self.lab.client("glue")
        try:
            found: dict[str, Any] = glue.get_integration_table_properties(
                ResourceArn=self.target_arn, TableName=self.table_name
            )
        except glue.exceptions.EntityNotFoundException:
            return None
        except Exception as exc:
            if not is_api_error(exc):
                raise
            return None
        return found

    # -- target database ----------------------------------------------------------------------
    def create_target_database(self) -> str | None:
        """``glue.create_database`` with :attr:`new_database` (and its location, if given);
        selects it as the target. Returns its ARN, or None (see ``issues["new_database"]``)."""
        db: dict[str, Any] = {"Name": self.new_database}
        if self.new_database_location:
            db["LocationUri"] = self.new_database_location
        self.touched.add("new_database")
        self.issues.pop("new_database", None)
        try:
            self.lab.client("glue").create_database(DatabaseInput=db)
        except Exception as exc:
            if not is_api_error(exc):
                raise
            code, message = api_error(exc)
            self.issues["new_database"] = Issue("new_database", code, message)
            self.changed()
            return None
        self._options.pop("targets", None)
        name = self.new_database.lower()  # Glue keeps database names in lower case
        arn = next((o.value for o in self.target_options() if o.label == name), None)
        self.notice = f"Created Glue database '{name}'."
        self.new_database = self.new_database_location = ""
        if arn is not None:
            self.set("target_arn", arn)
        else:
            self.changed()
        return arn

    # -- navigation ---------------------------------------------------------------------------
    def next(self) -> bool:
        """Go to the next step if this one is valid (its fields count as touched)."""
        self.touched.update(f for f in self.current.fields if f)
        if self.current.key == "details":
            self.touched.add("continuous_sync")
        self.validate()
        if self._blocking(self.step) or self.step == len(STEPS) - 1:
            return False
        self.step += 1
        if self.current.key == "details" and not self.name:
            self.name = _suggest_name(self.source_arn, self.target_arn)
        self.validate()
        return True

    def back(self) -> None:
        """Go to the previous step."""
        if self.step > 0:
            self.step -= 1
            self.changed()

    def go(self, key: str) -> bool:
        """Jump back to an earlier step by key (the console's step list)."""
        target = next(i for i, s in enumerate(STEPS) if s.key == key)
        if target > self.step:
            return False
        self.step = target
        self.changed()
        return True

    def _blocking(self, index: int) -> list[Issue]:
        # A failed create_database is shown on its step but does not hold the wizard back.
        return [i for i in self.step_issues(index) if i.field != "new_database"]

    def step_issues(self, index: int) -> list[Issue]:
        """The issues shown on step ``index``."""
        fields = set(STEPS[index].fields)
        if STEPS[index].key == "details":
            fields.add("continuous_sync")
        if STEPS[index].key == "source_target":
            fields.add("")
        return [i for f, i in self.issues.items() if f in fields]

    # -- validation ---------------------------------------------------------------------------
    def validate(self) -> dict[str, Issue]:
        """Check every field with the API's own rules; keep the issues of touched fields."""
        found: dict[str, Issue] = {}
        if self.kind is None:
            found["source_type"] = Issue(
                "source_type", "Required", "Choose the kind of source to replicate from."
            )
        else:
            found.update(self._create_issues())
            found.update(self._table_issues())
        keep = dict(self.issues)
        self.issues = {f: i for f, i in found.items() if self._shown(f)}
        if "new_database" in keep:  # from create_target_database, not from validation
            self.issues.setdefault("new_database", keep["new_database"])
        self.changed()
        return self.issues

    def _shown(self, name: str) -> bool:
        """Issues show once their field was touched; the step's own once past the first step;
        the source table's as soon as an output setting needs it."""
        if name in self.touched:
            return True
        if name == "":
            return self.step > 0
        return name == "table_name" and bool(self.touched & set(_TABLE_FIELDS))

    def _create_issues(self) -> dict[str, Issue]:
        kind = self.kind
        assert kind is not None
        untouched = not {"source_arn", "target_arn"} & self.touched
        if self.source_arn is None and self.target_arn is None and untouched:
            return {}  # nothing chosen yet: nothing to say
        base: dict[str, Any] = {"IntegrationName": self._placeholder}
        if self.source_arn:
            base["SourceArn"] = self.source_arn
        if self.target_arn:
            base["TargetArn"] = self.target_arn
        steps = [(f, m) for f, m in self._members(kind) if f != "name" or self._name_due()]
        return self._dry.check_each(kind.service, "create_integration", base, steps, _base_field)

    def _name_due(self) -> bool:
        return "name" in self.touched or self.step >= STEP_OF["name"]

    def _members(self, kind: SourceType) -> list[tuple[str, dict[str, Any]]]:
        """(field, request members) for every optional field given, in the steps' order."""
        out: list[tuple[str, dict[str, Any]]] = []
        if kind.relational and self.data_filter:
            out.append(("data_filter", {"DataFilter": self.data_filter}))
        if self.kms_key_id:
            out.append(
                ("kms_key_id", {"KMSKeyId" if kind.relational else "KmsKeyId": self.kms_key_id})
            )
        out.append(("name", {"IntegrationName": self.name}))
        if self.description:
            out.append(("description", {"Description": self.description}))
        if not kind.relational and self.refresh_interval:
            out.append(
                (
                    "refresh_interval",
                    {"IntegrationConfig": {"RefreshInterval": self.refresh_interval}},
                )
            )
        if not kind.relational and not self.continuous_sync:
            out.append(("continuous_sync", {"IntegrationConfig": {"ContinuousSync": False}}))
        return out

    def _table_issues(self) -> dict[str, Issue]:
        call = self.table_properties_call()
        if call is None or not self.target_arn:
            return {}
        base = {k: v for k, v in call.params.items() if k != "TargetTableConfig"}
        base["TargetTableConfig"] = {}
        config = call.params.get("TargetTableConfig", {})
        steps = [
            (f, {"TargetTableConfig": {member: config[member]}})
            for f, member in (
                ("unnest_spec", "UnnestSpec"),
                ("target_table_name", "TargetTableName"),
                ("partitions", "PartitionSpec"),
            )
            if member in config
        ]
        return self._dry.check_each("glue", call.method, base, steps, _table_base_field)

    # -- the calls ----------------------------------------------------------------------------
    def table_properties_call(self) -> Call | None:
        """``create_``/``update_integration_table_properties`` for the output settings, or None
        when they are all left at their defaults."""
        config: dict[str, Any] = {}
        kind = self.kind
        if kind is not None and not kind.relational:
            if self.unnest_spec:
                config["UnnestSpec"] = self.unnest_spec
            if self.partitions:
                config["PartitionSpec"] = partition_spec(self.partitions)
        if self.target_table_name:
            config["TargetTableName"] = self.target_table_name
        if not config or not self.target_arn:
            return None  # (an empty TableName is left for the API to name)
        exists = self._table_properties() is not None
        method = "update" if exists else "create"
        params = {
            "ResourceArn": self.target_arn,
            "TableName": self.table_name,
            "TargetTableConfig": config,
        }
        return Call("glue", f"{method}_integration_table_properties", params)

    def calls(self) -> list[Call]:
        """The API calls :meth:`create` will make, in order (a notebook cell could make them)."""
        kind = self.kind
        if kind is None:
            return []
        table = self.table_properties_call()
        request = {"IntegrationName": self.name}
        if self.source_arn:
            request["SourceArn"] = self.source_arn
        if self.target_arn:
            request["TargetArn"] = self.target_arn
        for f, members in self._members(kind):
            if f != "name":
                request = _merged(request, members)
        return create_calls(table, Call(kind.service, "create_integration", request))

    def review(self) -> list[tuple[str, str]]:
        """(label, value) rows of the review step."""
        kind = self.kind
        rows = [
            ("Source type", kind.label if kind else ""),
            ("Source", self.source_arn or ""),
            ("Target", self.target_arn or ""),
        ]
        if kind is not None and not kind.relational:
            rows += [
                ("UnnestSpec", self.unnest_spec or "FULL (default)"),
                (
                    "Partition keys",
                    describe_partitions(self.partitions) or "none (bucket on the key)",
                ),
            ]
        else:
            rows.append(("DataFilter", self.data_filter or "(default: every table)"))
        rows += [
            ("Target table name", self.target_table_name or "(same as the source table)"),
            ("KMS key", self.kms_key_id or "(AWS owned key)"),
            ("Name", self.name),
            ("Description", self.description or ""),
        ]
        if kind is not None and not kind.relational:
            rows.append(("RefreshInterval", f"{self.refresh_interval or '15'} minutes"))
            rows.append(("ContinuousSync", "on" if self.continuous_sync else "off"))
        return rows

    # -- create -------------------------------------------------------------------------------
    def create(self) -> str | None:
        """Validate everything, then make :meth:`calls`; the integration ARN or None."""
        self.touched.update(FIELDS | {"partitions", ""})
        self.validate()
        if any(f != "new_database" for f in self.issues):
            self.notice = "Fix the fields marked above first."
            self.changed()
            return None
        out: dict[str, Any] = {}
        for call in self.calls():
            try:
                out = getattr(self.lab.client(call.service), call.method)(**call.params)
            except Exception as exc:
                if not is_api_error(exc):
                    raise
                code, message = api_error(exc)
                self.issues[""] = Issue("", code, message)
                self.notice = f"{call.service}.{call.method} failed: {message}"
                self.changed()
                return None
        arn = str(out["IntegrationArn"])
        created = CreatedIntegration(self.lab, arn, self.calls()[-1].service)
        created.track(out)
        created.on_change = self.changed
        created.watch()
        self.created = created
        self.notice = f"Created integration '{self.name}'."
        self.changed()
        return arn

    # -- after create: status and fix it ------------------------------------------------------
    @property
    def integration_arn(self) -> str | None:
        """The created integration's ARN (None before :meth:`create`)."""
        return self.created.arn if self.created else None

    @property
    def status(self) -> str | None:
        """The created integration's status, kept current from the bus."""
        return self.created.status if self.created else None

    @property
    def errors(self) -> list[dict[str, str]]:
        """The created integration's Errors (prerequisite problems, ...)."""
        return self.created.errors if self.created else []

    @property
    def fix(self) -> FixIt | None:
        """The "Fix it for me" flow of the created integration."""
        return self.created.fix if self.created else None

    def refresh_status(self) -> str | None:
        """Read the created integration's status now."""
        return self.created.refresh() if self.created else None

    def wait(self, status: str | list[str], timeout: float = 30.0) -> str | None:
        """Block until the created integration reaches ``status``."""
        return self.created.wait(status, timeout) if self.created else None

    def preview_fixes(self) -> list[dict[str, Any]]:
        """ "Fix it for me", step one: what would change (nothing changes yet)."""
        return self.created.preview_fixes() if self.created else []

    def apply_fixes(self) -> list[dict[str, Any]]:
        """ "Fix it for me", step two: make the changes :meth:`preview_fixes` showed."""
        return self.created.apply_fixes() if self.created else []

    def close(self) -> None:
        """Stop following the created integration on the bus."""
        if self.created:
            self.created.close()


def _base_field(issue: Issue) -> str:
    """Which field a failing ``SourceArn``/``TargetArn`` request is about."""
    text = issue.message
    if "TargetArn" in text or "Target " in text:
        return "target_arn"
    if "SourceArn" in text or "Source " in text:
        return "source_arn"
    return ""


def _table_base_field(issue: Issue) -> str:
    if "ResourceArn" in issue.message or "Target " in issue.message:
        return "target_arn"
    return "table_name"


def _merged(request: dict[str, Any], members: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    for key, value in members.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def describe_partitions(keys: list[PartitionKey]) -> str:
    """``category (identity), ts (day, iso)``."""
    parts = []
    for k in keys:
        extra = ", ".join(x for x in (k.function or "identity", k.conversion) if x)
        parts.append(f"{k.field_name} ({extra})")
    return ", ".join(parts)


def _suggest_name(source_arn: str | None, target_arn: str | None) -> str:
    """``products-to-lakehouse``: a starting point the user can change (the API judges it)."""
    text = f"{name_of(source_arn)}-to-{name_of(target_arn)}"
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:63]
