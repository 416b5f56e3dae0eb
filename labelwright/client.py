"""A small Python client for the REST API: ``labelwright.Client(url, token)``.

Methods return plain dicts, or pandas DataFrames where the result is a table::

    from labelwright import Client
    lw = Client("http://127.0.0.1:8000", token)
    lw.create_project({"name": "Spam", "fields": [...], "questions": [...]})
    lw.add_items("spam", [{"id": "1", "text": "buy now"}])
    item = lw.next("spam")
    lw.submit(item["id"], {"spam": "spam"})
    df = lw.export_dataframe("spam")
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from typing import Any, overload

import httpx
import orjson


class ApiError(Exception):
    """An error answer from the server, with its HTTP status and the field it names (if any)."""

    def __init__(self, status: int, body: dict):
        self.status = status
        self.body = body
        self.field = body.get("field")
        msg = body.get("error") or str(body)
        super().__init__(f"HTTP {status}: {msg}" + (f" (field {self.field})" if self.field else ""))


class Client:
    def __init__(self, url: str, token: str, *, timeout: float = 60.0, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url + "/api/v1", timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method: str, path: str, **kw) -> Any:
        r = self._http.request(method, path, **kw)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": r.text}
            raise ApiError(r.status_code, body)
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    # ---- users and projects -----------------------------------------------------------------

    def me(self) -> dict:
        return self._call("GET", "/me")

    def create_user(self, name: str, role: str = "annotator", password: str | None = None,
                    projects: Sequence[str] = (), project_role: str = "annotator") -> dict:
        """Create a user (owner); ``projects`` they join with ``project_role``."""
        return self._call("POST", "/users", json={"name": name, "role": role, "password": password,
                                                  "projects": list(projects), "project_role": project_role})

    def projects(self):
        import pandas as pd  # noqa: PLC0415 - pandas takes about a second to import; only the table helpers need it

        return pd.DataFrame(self._call("GET", "/projects"))

    def create_project(self, schema: dict) -> dict:
        return self._call("POST", "/projects", json=schema)

    def project(self, project: str) -> dict:
        return self._call("GET", f"/projects/{project}")

    def status(self, project: str) -> dict:
        return self._call("GET", f"/projects/{project}/status")

    # ---- items ---------------------------------------------------------------------------------

    def add_items(self, project: str, items, batch_size: int = 5_000) -> dict:
        """Add items from a list of dicts or a pandas DataFrame. Each batch is atomic on the server."""
        if hasattr(items, "to_dict"):
            items = [{k: v for k, v in row.items() if v is not None and v == v}
                     for row in items.to_dict(orient="records")]
        total = {"received": 0, "inserted": 0, "duplicates": 0, "gold": 0}
        for start in range(0, len(items), batch_size):
            res = self._call("POST", f"/projects/{project}/items",
                             content=orjson.dumps({"items": items[start:start + batch_size]}),
                             headers={"Content-Type": "application/json"})
            for k in total:
                total[k] += res[k]
        return total

    # ---- labelling -----------------------------------------------------------------------------

    def next(self, project: str) -> dict | None:
        """Claim the next item (None when nothing is left for this user)."""
        return self._call("POST", f"/projects/{project}/next")

    def submit(self, item_id: int, answers: dict, *, active_ms: int = 0, idempotency_key: str | None = None) -> dict:
        """Submit answers; retried with the same idempotency key, it never creates a second annotation."""
        key = idempotency_key or str(uuid.uuid4())
        return self._call("POST", f"/items/{item_id}/annotations",
                          json={"answers": answers, "active_ms": active_ms, "idempotency_key": key})

    def amend(self, annotation_id: int, answers: dict, *, active_ms: int = 0) -> dict:
        return self._call("PUT", f"/annotations/{annotation_id}", json={"answers": answers, "active_ms": active_ms})

    def skip(self, item_id: int) -> None:
        self._call("POST", f"/items/{item_id}/skip")

    def release(self, item_id: int) -> None:
        self._call("POST", f"/items/{item_id}/release")

    def history(self, project: str, limit: int = 20) -> list[dict]:
        return self._call("GET", f"/projects/{project}/history", params={"limit": limit})

    # ---- export --------------------------------------------------------------------------------

    @overload
    def export(self, project: str, format: str = "jsonl", path: None = None) -> bytes: ...

    @overload
    def export(self, project: str, format: str, path: str) -> None: ...

    @overload
    def export(self, project: str, format: str = "jsonl", *, path: str) -> None: ...

    def export(self, project: str, format: str = "jsonl", path: str | None = None) -> bytes | None:
        """Stream the export to ``path`` (returns None) or return it as bytes."""
        with self._http.stream("GET", f"/projects/{project}/export", params={"format": format}) as r:
            if r.status_code >= 400:
                r.read()
                raise ApiError(r.status_code, r.json())
            if path is None:
                return r.read()
            with open(path, "wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
        return None

    def export_records(self, project: str) -> list[dict]:
        return [orjson.loads(line) for line in self.export(project, "jsonl").splitlines() if line]

    def export_dataframe(self, project: str):
        """The flat export (one row per annotation) as a pandas DataFrame."""
        import pandas as pd  # noqa: PLC0415 - heavy, see projects()

        return pd.read_parquet(io.BytesIO(self.export(project, "parquet")))
