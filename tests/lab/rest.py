"""Raw REST access to one lab apiserver through the official ``kubernetes`` client.

The loader and the read-back tests handle any kind a snapshot holds, so they address objects by URL from the
server's own discovery instead of per-kind typed APIs (and instead of ``DynamicClient``, whose discovery cache
lives in a shared temp file keyed by host and port, which the lab reuses across runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    """One served resource type, as discovery lists it."""

    group_version: str
    kind: str
    plural: str
    namespaced: bool
    has_status: bool

    def collection(self, namespace: str | None = None) -> str:
        base = f"/api/{self.group_version}" if "/" not in self.group_version else f"/apis/{self.group_version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if self.namespaced else f"{base}/{self.plural}"


class Rest:
    """JSON requests against one apiserver; errors surface as the client's ``ApiException``."""

    def __init__(self, api: ApiClient, timeout: float = 60) -> None:
        self.api = api
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Obj:
        headers = {"Accept": "application/json"}
        if body is not None:
            # client 37 sends no Content-Type for a body unless told; say it, so nothing depends on server defaults
            headers["Content-Type"] = "application/merge-patch+json" if method == "PATCH" else "application/json"
        params = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*params, _request_timeout=self.timeout)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)
        return json.loads(data) if data else {}

    def get(self, path: str, **query: Any) -> Obj:
        return self.request("GET", path, query=query)

    def discover(self) -> dict[tuple[str, str], Resource]:
        """Every served resource by (apiVersion, kind), with whether it has a /status subresource."""
        group_versions = list(self.get("/api")["versions"])
        for group in self.get("/apis")["groups"]:
            group_versions.extend(v["groupVersion"] for v in group["versions"])
        found: dict[tuple[str, str], Resource] = {}
        for gv in group_versions:
            listed = self.get(f"/api/{gv}" if "/" not in gv else f"/apis/{gv}")["resources"]
            names = {r["name"] for r in listed}
            for r in listed:
                if "/" not in r["name"]:
                    found[(gv, r["kind"])] = Resource(
                        gv, r["kind"], r["name"], r["namespaced"], f"{r['name']}/status" in names
                    )
        return found
