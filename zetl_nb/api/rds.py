"""RDS's face of the same integrations: CreateIntegration and friends for Aurora/RDS sources.

RDS spells things its own way — lower-case statuses (``needs_attention``), ``KMSKeyId``,
``arn:aws:rds:...:integration:<uuid>`` ARNs, faults such as ``DBClusterNotFoundFault`` and
``IntegrationAlreadyExistsFault`` — over the one state machine the Glue face uses.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import AwsError
from ..engine.control import RDS, ControlPlane
from .shapes import paginate, rds_integration

_FILTERS = {
    "integration-identifier": "arn",
    "status": "status",
    "source-arn": "source_arn",
    "integration-name": "name",
}


class RdsService:
    """Server side of ``lab.client("rds")`` and the RDS face of ``zetl-nb serve``."""

    service_name = "rds"
    OPERATIONS = frozenset(
        {"CreateIntegration", "DescribeIntegrations", "ModifyIntegration", "DeleteIntegration"}
    )

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    def supports(self, operation: str) -> bool:
        return operation in self.OPERATIONS

    def dispatch(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "CreateIntegration":
            return rds_integration(self.cp.create(RDS, params))
        if operation == "ModifyIntegration":
            return rds_integration(self.cp.modify(RDS, params))
        if operation == "DeleteIntegration":
            return rds_integration(self.cp.delete(RDS, params["IntegrationIdentifier"]))
        if operation == "DescribeIntegrations":
            return self._describe(params)
        raise AwsError("InvalidAction", f"zetl_nb does not implement RDS {operation}.")

    def _describe(self, p: dict[str, Any]) -> dict[str, Any]:
        if "IntegrationIdentifier" in p:
            items = [self.cp.find(p["IntegrationIdentifier"], RDS)]
        else:
            items = self.cp.integrations(RDS)
        for f in p.get("Filters") or []:
            attr = _FILTERS.get(f["Name"])
            if attr is None:
                raise AwsError(
                    "InvalidParameterValue",
                    f"Filter name '{f['Name']}' is not supported; use one of "
                    f"{', '.join(sorted(_FILTERS))}.",
                )
            values = set(f["Values"])
            items = [
                i
                for i in items
                if getattr(i, attr) in values
                or (attr == "status" and i.state.rds in values)
                or (attr == "arn" and i.integration_id in values)
            ]
        try:
            page, marker = paginate(items, p.get("Marker"), p.get("MaxRecords"), lo=20)
        except AwsError as err:
            raise AwsError("InvalidParameterValue", err.message) from None
        out: dict[str, Any] = {"Integrations": [rds_integration(i) for i in page]}
        if marker:
            out["Marker"] = marker
        return out
