import json

from tests.conftest import bearer


def test_claim_submit_export_roundtrip(http, owner, make_annotator, spam_project):
    _, token = make_annotator("ana")
    r = http.post("/api/v1/projects/spam/next", headers=bearer(token))
    assert r.status_code == 200, r.text
    item = r.json()
    assert item["external_id"] == "c0" and item["data"]["text"] == "comment 0"
    r = http.post(f"/api/v1/items/{item['id']}/annotations", headers=bearer(token),
                  json={"answers": {"spam": "ham"}, "active_ms": 1200, "idempotency_key": "k1"})
    assert r.status_code == 201, r.text
    r = http.get("/api/v1/projects/spam/export", headers=bearer(owner[1]))
    lines = [line for line in r.text.splitlines() if line]
    assert len(lines) == 10
    first = json.loads(lines[0])
    assert first["annotations"][0]["annotator"] == "ana"
    assert first["majority"]["spam"] == {"label": "ham", "agreement": 1.0, "n": 1}
