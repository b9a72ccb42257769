"""The control plane: create, modify, delete and describe integrations; one state machine.

Both API faces (Glue and RDS) call into :class:`ControlPlane`; a :class:`Face` carries the error
codes each face uses for the same situation (Glue's ``EntityNotFoundException`` is RDS's
``DBClusterNotFoundFault``). Requests are accepted synchronously (state ``CREATING``,
``MODIFYING``, ``DELETING``); the :class:`~zetl_nb.engine.scheduler.Engine` thread completes them.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.arn import glue_integration_arn, rds_integration_arn
from ..core.errors import AwsError, validation
from ..core.events import Event, EventBus
from ..core.prerequisites import Problem
from ..core.states import DELETABLE, MODIFIABLE, IntegrationState, can_transition
from ..target.catalog import LocalCatalog
from ..transform.datafilter import DataFilter
from . import prerequisites
from .resources import SourceRef, parse_source, parse_target, registered_database, source_missing
from .store import ControlStore, Integration

S = IntegrationState

#: AWS's documented quotas.
MAX_PER_ACCOUNT = 25
MAX_PER_SOURCE = 15
MAX_PER_TARGET = 50
REFRESH_MIN, REFRESH_MAX = 15, 8640

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*")
_KMS = re.compile(
    r"(arn:aws:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):(key/[A-Za-z0-9-]+|alias/[\w/-]+))"
    r"|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(mrk-[0-9a-f]{32})"
    r"|(alias/[\w/-]+)"
)


@dataclass(frozen=True)
class Face:
    """The error codes and ARN form of one API face."""

    api: str
    source_not_found: str
    name_exists: str
    quota: str
    kms: str
    state_case: Callable[[IntegrationState], str]


GLUE = Face(
    "glue",
    "EntityNotFoundException",
    "ConflictException",
    "ResourceNumberLimitExceededException",
    "KMSKeyNotAccessibleFault",
    lambda s: s.value,
)
RDS = Face(
    "rds",
    "DBClusterNotFoundFault",
    "IntegrationAlreadyExistsFault",
    "IntegrationQuotaExceededFault",
    "KMSKeyNotAccessibleFault",
    lambda s: s.rds,
)


class ControlPlane:
    """Integration records and their lifecycle. Thread-safe."""

    def __init__(
        self,
        store: ControlStore,
        catalog: LocalCatalog,
        bus: EventBus,
        account: str,
        region: str,
        dynamodb: Callable[[], Any],
        retry_window_seconds: float = 7 * 86400,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.bus = bus
        self.account = account
        self.region = region
        self.dynamodb = dynamodb
        self.retry_window_seconds = retry_window_seconds
        self.lock = threading.RLock()
        #: Called after every accepted request so the engine thread wakes at once.
        self.on_change: Callable[[], None] = lambda: None

    # -- lookups ------------------------------------------------------------------------------
    def find(self, identifier: str, face: Face | None = None) -> Integration:
        """An integration by ARN, id or name; IntegrationNotFoundFault otherwise."""
        for integ in self.store.integrations():
            if face and integ.api != face.api:
                continue
            if identifier in (integ.arn, integ.integration_id, integ.name):
                return integ
        raise AwsError(
            "IntegrationNotFoundFault",
            f"Integration '{identifier}' was not found. List integrations with "
            "describe_integrations() and pass an IntegrationArn.",
            404,
        )

    def integrations(self, face: Face | None = None) -> list[Integration]:
        return [i for i in self.store.integrations() if face is None or i.api == face.api]

    # -- create -------------------------------------------------------------------------------
    def create(self, face: Face, req: dict[str, Any]) -> Integration:
        """Validate a CreateIntegration request and record the integration as CREATING."""
        name = req["IntegrationName"]
        _check_name(name, "IntegrationName")
        source = parse_source(req["SourceArn"], self.account, self.region)
        target = parse_target(req["TargetArn"], self.account, self.region)
        if face is RDS and source.kind != "rds":
            raise validation(
                "SourceArn must be an Aurora/RDS cluster for rds.create_integration; "
                "create DynamoDB and SaaS integrations with glue.create_integration."
            )
        config = dict(req.get("IntegrationConfig") or {})
        data_filter = req.get("DataFilter")
        if data_filter is not None:
            data_filter = _check_data_filter(data_filter, source, self._engine(source))
        kms = req.get("KmsKeyId", req.get("KMSKeyId"))
        self._check_kms(face, kms, req.get("AdditionalEncryptionContext"))
        refresh = _refresh_interval(config.get("RefreshInterval"), source)
        with self.lock:
            self._check_unique(face, name)
            self._check_source_exists(face, source)
            self._check_target_exists(target)
            self._check_quotas(face, source.arn, target.arn)
            integration_id = str(uuid.uuid4())
            make_arn = glue_integration_arn if face is GLUE else rds_integration_arn
            integ = Integration(
                arn=make_arn(self.region, self.account, integration_id),
                api=face.api,
                name=name,
                source_arn=source.arn,
                target_arn=target.arn,
                create_time=time.time(),
                description=req.get("Description"),
                data_filter=data_filter,
                kms_key_id=kms,
                additional_encryption_context=dict(req.get("AdditionalEncryptionContext") or {}),
                tags=list(req.get("Tags") or []),
                refresh_interval=refresh,
                source_properties=dict(config.get("SourceProperties") or {}),
                continuous_sync=config.get("ContinuousSync", True if face is GLUE else None),
            )
            self.store.put_integration(integ, record_state=True)
            # Under the lock: the engine's first transition (it takes the lock) cannot be
            # announced before CREATING is.
            self._announce(integ, None)
        return integ

    def _engine(self, source: SourceRef) -> str | None:
        """``postgres`` or ``mysql`` for a registered database source."""
        doc = registered_database(self.store, source.name) if source.kind == "rds" else None
        return str(doc["Engine"]) if doc else None

    def _check_unique(self, face: Face, name: str, skip: str | None = None) -> None:
        for other in self.integrations(face):
            if other.name == name and other.arn != skip:
                raise AwsError(
                    face.name_exists,
                    f"An integration named '{name}' already exists ({other.arn}). Choose another "
                    "IntegrationName, or delete the existing integration first.",
                    409 if face is GLUE else 400,
                )

    def _check_source_exists(self, face: Face, source: SourceRef) -> None:
        if source.kind == "dynamodb":
            from ..sources.dynamodb import table_exists

            if not table_exists(self.dynamodb(), source.name):
                raise source_missing(
                    "EntityNotFoundException",
                    source,
                    "Create the table first (dynamodb.create_table).",
                )
        elif source.kind == "rds" and registered_database(self.store, source.name) is None:
            raise source_missing(
                face.source_not_found,
                source,
                "Register the database with lab.add_database(name, url).",
            )
        elif source.kind == "saas" and self.store.get_doc("connections", source.name) is None:
            raise source_missing(
                "EntityNotFoundException", source, "Create it first with glue.create_connection()."
            )

    def _check_target_exists(self, target: Any) -> None:
        if target.kind == "s3tables" and not self.catalog.exists(target.namespace):
            # An S3 Tables catalog is not a Glue database: its local namespace appears on demand.
            self.catalog.create_namespace(
                target.namespace, location=self.catalog.default_location(target.namespace)
            )
        if not self.catalog.exists(target.namespace):
            raise AwsError(
                "EntityNotFoundException",
                f"Target database '{target.namespace}' ({target.arn}) does not exist. Create it "
                f"first: glue.create_database(DatabaseInput={{'Name': '{target.namespace}', "
                "'LocationUri': '<path or s3:// URI>'}).",
            )

    def _check_quotas(self, face: Face, source_arn: str, target_arn: str) -> None:
        live = self.integrations()
        limits = [
            (len(live), MAX_PER_ACCOUNT, "integrations per account"),
            (
                sum(i.source_arn == source_arn for i in live),
                MAX_PER_SOURCE,
                f"integrations per source ({source_arn})",
            ),
            (
                sum(i.target_arn == target_arn for i in live),
                MAX_PER_TARGET,
                f"integrations per target ({target_arn})",
            ),
        ]
        for count, limit, what in limits:
            if count >= limit:
                raise AwsError(
                    face.quota,
                    f"Quota reached: at most {limit} {what}. Delete an integration you no "
                    "longer need before creating another.",
                )

    def _check_kms(self, face: Face, kms: str | None, context: Any) -> None:
        if context and not kms:
            raise validation("AdditionalEncryptionContext requires KmsKeyId; add a KmsKeyId.")
        if kms is None:
            return
        m = _KMS.fullmatch(kms)
        if not m:
            raise validation(
                f"KmsKeyId '{kms}' is not a KMS key id, key ARN, alias name or alias ARN, e.g. "
                f"arn:aws:kms:{self.region}:{self.account}:key/1234abcd-12ab-34cd-56ef-"
                "1234567890ab."
            )
        if m.group("account") and (m.group("account"), m.group("region")) != (
            self.account,
            self.region,
        ):
            raise AwsError(
                face.kms,
                f"KMS key '{kms}' is not accessible from account "
                f"{self.account} in {self.region}. Use a key in this account/region.",
            )

    # -- modify / delete ----------------------------------------------------------------------
    def modify(self, face: Face, req: dict[str, Any]) -> Integration:
        with self.lock:
            integ = self.find(req["IntegrationIdentifier"], face)
            if integ.state not in MODIFIABLE:
                raise _bad_state(integ, "modified", face)
            source = parse_source(integ.source_arn, self.account, self.region)
            if "IntegrationName" in req:
                _check_name(req["IntegrationName"], "IntegrationName")
                self._check_unique(face, req["IntegrationName"], skip=integ.arn)
                integ.name = req["IntegrationName"]
            if "Description" in req:
                integ.description = req["Description"]
            if "DataFilter" in req:
                integ.data_filter = _check_data_filter(
                    req["DataFilter"], source, self._engine(source)
                )
            config = req.get("IntegrationConfig") or {}
            if "ContinuousSync" in config and config["ContinuousSync"] != integ.continuous_sync:
                raise validation(
                    "ContinuousSync cannot be changed after the integration is "
                    "created; create a new integration instead."
                )
            if "RefreshInterval" in config:
                integ.refresh_interval = _refresh_interval(config["RefreshInterval"], source)
            if "SourceProperties" in config:
                integ.source_properties = dict(config["SourceProperties"])
            old = integ.state
            integ.status = S.MODIFYING.value
            self.store.put_integration(integ, record_state=True)
            self._announce(integ, old)  # under the lock: events in the order of the changes
        return integ

    def delete(self, face: Face, identifier: str) -> Integration:
        with self.lock:
            integ = self.find(identifier, face)
            if integ.state not in DELETABLE:
                raise _bad_state(integ, "deleted", face)
            old = integ.state
            integ.status = S.DELETING.value
            self.store.put_integration(integ, record_state=True)
            self._announce(integ, old)  # under the lock: events in the order of the changes
        return integ

    # -- engine side --------------------------------------------------------------------------
    def transition(
        self, integ: Integration, new: IntegrationState, problems: list[Problem] | None = None
    ) -> None:
        """Move ``integ`` to ``new`` (engine use), recording history and publishing an event."""
        with self.lock:
            current = self.store.get_integration(integ.arn)
            if current is None:
                return
            if current.status != integ.status:
                return  # decided on a stale read: a request changed the state meanwhile
            old = current.state
            errors = [p.as_error() for p in problems or []]
            if old == new and current.errors == errors:
                return
            if old != new and not can_transition(old, new):
                raise RuntimeError(f"illegal transition {old.value} -> {new.value}")
            current.status, current.errors = new.value, errors
            if new is S.NEEDS_ATTENTION and current.attention_since is None:
                current.attention_since = time.time()
            elif new is not S.NEEDS_ATTENTION:
                current.attention_since = None
            if new is S.DELETED:
                self.store.delete_integration(current)
            else:
                self.store.put_integration(current, record_state=old != new)
            if old != new:  # under the lock: a request's change cannot be announced first
                self._announce(current, old)

    def problems(self, integ: Integration) -> list[Problem]:
        source = parse_source(integ.source_arn, self.account, self.region)
        target = parse_target(integ.target_arn, self.account, self.region)
        return prerequisites.check(self, source, target)

    def _announce(self, integ: Integration, old: IntegrationState | None) -> None:
        self.bus.publish(
            Event(
                "state",
                {
                    "IntegrationArn": integ.arn,
                    "IntegrationName": integ.name,
                    "From": old.value if old else None,
                    "To": integ.status,
                    "Errors": list(integ.errors),
                },
            )
        )
        self.on_change()


def _bad_state(integ: Integration, verb: str, face: Face) -> AwsError:
    return AwsError(
        "InvalidIntegrationStateFault",
        f"Integration '{integ.name}' is {face.state_case(integ.state)} and cannot be {verb} now; "
        "wait until it is active (describe_integrations shows its Status).",
    )


def _check_name(name: str, field: str) -> None:
    if not _NAME.fullmatch(name) or len(name) > 63:
        raise validation(
            f"{field} '{name}' is invalid: use 1-63 letters, digits and hyphens, starting with a "
            "letter, with no consecutive or trailing hyphens (e.g. orders-to-lakehouse)."
        )


def _check_data_filter(text: str, source: SourceRef, engine: str | None) -> str:
    """Validate ``text`` for the source: PostgreSQL ``db.schema.table``, MySQL ``db.table``."""
    if source.kind == "dynamodb":
        raise validation(
            "DataFilter is not supported for DynamoDB sources: a DynamoDB "
            "integration replicates the whole table. Remove DataFilter."
        )
    levels = 1 if source.kind == "saas" else 3 if engine == "postgres" else 2
    DataFilter.parse(text, levels)
    return text


def _refresh_interval(value: str | None, source: SourceRef) -> str | None:
    if value is None:
        return source.default_refresh_interval
    if source.kind == "rds":
        raise validation(
            "RefreshInterval does not apply to Aurora/RDS sources, which replicate "
            "continuously; remove IntegrationConfig.RefreshInterval."
        )
    if not re.fullmatch(r"\d+", value) or not REFRESH_MIN <= int(value) <= REFRESH_MAX:
        raise validation(
            f"IntegrationConfig.RefreshInterval '{value}' must be a whole number of minutes "
            f"from {REFRESH_MIN} to {REFRESH_MAX} (e.g. '15' or '60')."
        )
    return str(int(value))
