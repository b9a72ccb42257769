"""``zetl-nb serve``: one local AWS endpoint for every service a lab uses.

Glue calls (AWS JSON 1.1, ``X-Amz-Target: AWSGlue.<Operation>``) and RDS integration calls (query
protocol, ``Action=CreateIntegration``, signed for ``rds``) are answered by zetl_nb; every other
request — DynamoDB, DynamoDB Streams, S3, STS, and the Glue/RDS operations zetl_nb does not
implement — is forwarded unchanged to the Lab's embedded moto server. So
``boto3.client(<service>, endpoint_url=URL)`` works for all of them against one URL.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..core.errors import AwsError
from . import model, protocols
from .client import Service, invoke

if TYPE_CHECKING:
    from ..lab import Lab

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
}


class Gateway:
    """The WSGI application behind ``zetl-nb serve``."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.glue: Service = lab.service("glue")
        self.rds: Service = lab.service("rds")
        self.backend = urlsplit(lab.dynamodb_url)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("AWSGlue."):
            operation = target.split(".", 1)[1]
            if self.glue.supports(operation):
                return self._json(operation, body, start_response)
        elif _signing_service(environ) == "rds" and environ["REQUEST_METHOD"] == "POST":
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            if self.rds.supports(form.get("Action", "")):
                return self._query(form, start_response)
        return self._forward(environ, body, start_response)

    # -- Glue: AWS JSON 1.1 -------------------------------------------------------------------
    def _json(self, operation: str, body: bytes, start: StartResponse) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        op_model = model.operation_model("glue", operation)
        try:
            params = protocols.parse_json_request(body, op_model)
            _validate("glue", operation, params, "ValidationException")
            result = invoke(self.glue, operation, params)
            payload = protocols.serialize_json_response(op_model, result)
            headers = {"Content-Type": "application/x-amz-json-1.1"}
            status = 200
        except AwsError as err:
            payload, headers = protocols.serialize_json_error(err.code, err.message)
            status = err.status
        except ValueError as exc:
            payload, headers = protocols.serialize_json_error("SerializationException", str(exc))
            status = 400
        headers["x-amzn-RequestId"] = request_id
        return _respond(start, status, headers, payload)

    # -- RDS: query protocol ------------------------------------------------------------------
    def _query(self, form: dict[str, str], start: StartResponse) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        operation = form["Action"]
        op_model = model.operation_model("rds", operation)
        try:
            params = protocols.parse_query_request(form, op_model)
            _validate("rds", operation, params, "InvalidParameterValue")
            result = invoke(self.rds, operation, params)
            payload = protocols.serialize_query_response(op_model, result, request_id)
            status = 200
        except AwsError as err:
            payload = protocols.serialize_query_error(err.code, err.message, request_id)
            status = err.status
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
        return _respond(start, status, headers, payload)

    # -- everything else: the embedded moto server --------------------------------------------
    def _forward(
        self, environ: dict[str, Any], body: bytes, start: StartResponse
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        headers = {
            k[5:].replace("_", "-").title(): v
            for k, v in environ.items()
            if k.startswith("HTTP_") and k[5:].replace("_", "-").lower() not in _HOP_HEADERS
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        headers["Host"] = environ.get("HTTP_HOST", self.backend.netloc)
        conn = http.client.HTTPConnection(
            self.backend.hostname or "127.0.0.1", self.backend.port, timeout=120
        )
        try:
            conn.request(environ["REQUEST_METHOD"], path, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_HEADERS}
            return _respond(start, resp.status, out, payload)
        finally:
            conn.close()


def _signing_service(environ: dict[str, Any]) -> str | None:
    m = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return m.group(1) if m else None


def _validate(service: str, operation: str, params: dict[str, Any], code: str) -> None:
    """botocore's client-side validation, repeated server-side for callers that skip it."""
    from botocore.exceptions import ParamValidationError

    try:
        model.client_validate(service, operation, params)
    except ParamValidationError as exc:
        raise AwsError(code, str(exc)) from None


def _respond(
    start: StartResponse, status: int, headers: dict[str, str], payload: bytes
) -> Iterable[bytes]:
    headers = {**headers, "Content-Length": str(len(payload))}
    start(f"{status} {_REASONS.get(status, 'Status')}", list(headers.items()))
    return [payload]


class LocalEndpoint:
    """The gateway served on a loopback port in a background thread.

    >>> with LocalEndpoint(lab) as url:                     # doctest: +SKIP
    ...     boto3.client("glue", endpoint_url=url, region_name="us-east-1").get_databases()
    """

    def __init__(self, lab: Lab, host: str = "127.0.0.1", port: int = 0) -> None:
        from werkzeug.serving import make_server

        self.lab = lab
        # One line per request on stderr is noise in a notebook or a demo; errors still show.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server(host, port, Gateway(lab), threaded=True)
        self.host = host
        self.port = int(self._server.server_port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="zetl-serve"
        )
        self._thread.start()
        return self.url

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def shutdown(self) -> None:
        """Make ``serve_forever`` return (from another thread, or a signal handler's thread)."""
        self._server.shutdown()

    def close(self) -> None:
        """Release the listening socket."""
        self._server.server_close()

    def stop(self) -> None:
        self.shutdown()
        self.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
