"""The item media route on both databases (docs/formats/media.md): members of the project get the image an
item references, with caching headers and 304s; outsiders and the signed-out do not; ``?thumb=1`` gives a
thumbnail cached on disk and reused; s3:// references redirect to the endpoint, and their thumbnails come
from a real HTTP server (tests/media_server.py)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from labelwright.app import create_app
from labelwright.services import items as items_svc
from labelwright.services import projects as projects_svc
from labelwright.services import queue as queue_svc
from labelwright.services import users as users_svc
from labelwright.store import tables as t
from tests.conftest import join, post_login
from tests.media_server import serve_folder

SCHEMA = {"name": "Pets", "slug": "pets", "id_field": "id",
          "fields": [{"name": "photo", "type": "image"}, {"name": "note", "type": "text", "required": False}],
          "questions": [{"name": "pets", "type": "boxes", "field": "photo", "labels": ["cat", "dog"]}]}


def _png(size, colour=(30, 90, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def world(settings, store, tmp_path):
    media = tmp_path / "media"
    (media / "cats").mkdir(parents=True)
    (media / "cats" / "tom.png").write_bytes(_png((800, 600)))
    www = tmp_path / "www"
    (www / "bucket").mkdir(parents=True)
    (www / "bucket" / "rex.png").write_bytes(_png((400, 800), (200, 10, 10)))
    users_svc.create_user(store, "olive", "owner", "owner-password")
    for name in ("ana", "otto"):
        users_svc.create_user(store, name, "annotator", f"{name}-password")
    p = projects_svc.create_project(store, SCHEMA)
    other = projects_svc.create_project(store, {**SCHEMA, "slug": "other", "name": "Other"})
    join(store, "ana", [p])
    join(store, "otto", [other])
    items_svc.add_items(store, p, [{"id": "tom", "photo": "cats/tom.png", "note": "a cat"},
                                   {"id": "rex", "photo": "s3://bucket/rex.png"},
                                   {"id": "bad", "photo": "../secret.png"}])
    items_svc.add_items(store, other, [{"id": "x", "photo": "cats/tom.png"}])
    ids = {r["id"]: r["item_id"] for r in _item_ids(store, p)}
    with serve_folder(www) as web:
        app = create_app(settings.with_(media_root=media, media_cache_dir=tmp_path / "cache",
                                        media_s3_endpoint=web.url, media_allow_private=True), store=store)
        with TestClient(app, base_url="http://127.0.0.1:8000") as http:
            yield {"http": http, "ids": ids, "web": web, "cache": tmp_path / "cache", "project": p}


def _item_ids(store, project):
    with store.read() as conn:
        rows = conn.execute(select(t.items.c.id, t.items.c.external_id)
                            .where(t.items.c.project_id == project.id)).all()
    return [{"id": r.external_id, "item_id": r.id} for r in rows]


def _sign_in(http, name: str) -> None:
    http.cookies.clear()
    assert post_login(http, name, f"{name}-password" if name != "olive" else "owner-password",
                      follow_redirects=False).status_code == 303


def _url(w, item: str, field: str = "photo") -> str:
    return f"/projects/pets/items/{w['ids'][item]}/media/{field}"


def test_members_get_the_image_and_others_do_not(world):
    http, url = world["http"], _url(world, "tom")
    assert http.get(url, follow_redirects=False).status_code == 303  # signed out: to the sign-in form
    _sign_in(http, "otto")  # an annotator, but of another project
    assert http.get(url).status_code == 403
    assert http.get(url + "?thumb=1").status_code == 403
    assert not world["cache"].exists()
    _sign_in(http, "ana")
    r = http.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (Path(world["http"].app.state.settings.media_root) / "cats/tom.png").read_bytes()
    assert r.headers["cache-control"] == "private, max-age=3600" and r.headers["last-modified"]
    assert "sandbox" in r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"
    again = http.get(url, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert http.get(url, headers={"If-Modified-Since": r.headers["last-modified"]}).status_code == 304
    assert http.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    _sign_in(http, "olive")  # the organisation's owner
    assert http.get(url).status_code == 200


def test_thumbnails_are_cached_on_disk_and_reused(world):
    http = world["http"]
    _sign_in(http, "ana")
    r = http.get(_url(world, "tom") + "?thumb=1")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(r.content)).size == (256, 192)
    files = [p for p in world["cache"].rglob("*.jpg")]
    assert len(files) == 1 and files[0].read_bytes() == r.content  # on disk, not in the database
    made = files[0].stat().st_mtime_ns
    again = http.get(_url(world, "tom") + "?thumb=1")
    assert again.content == r.content and files[0].stat().st_mtime_ns == made
    assert http.get(_url(world, "tom") + "?thumb=1", headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    assert r.headers["cache-control"] == "private, max-age=86400"


def test_s3_references_redirect_and_their_thumbnails_come_from_the_endpoint(world):
    http, web = world["http"], world["web"]
    _sign_in(http, "ana")
    r = http.get(_url(world, "rex"), follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"{web.url}/bucket/rex.png"
    t = http.get(_url(world, "rex") + "?thumb=1")
    assert t.status_code == 200 and Image.open(io.BytesIO(t.content)).size == (128, 256)
    assert web.seen[-1]["path"] == "/bucket/rex.png"
    assert http.get(_url(world, "rex") + "?thumb=1").content == t.content
    assert web.seen[-1]["ims"] is not None  # revalidated, 304, the cached thumbnail reused


def test_what_is_not_an_items_image_is_not_found(world):
    http = world["http"]
    _sign_in(http, "ana")
    r = http.get(_url(world, "bad"))
    assert r.status_code == 404 and "may not contain &#39;..&#39;" in r.text
    assert http.get(_url(world, "tom", "note")).status_code == 404  # not an image field
    assert http.get(_url(world, "tom", "nope")).status_code == 404
    assert http.get("/projects/pets/items/999999/media/photo").status_code == 404
    _sign_in(http, "olive")
    other_item = world["ids"]["tom"] + 3  # "x", the other project's item (added after pets' three)
    assert http.get(f"/projects/pets/items/{other_item}/media/photo").status_code == 404


def test_pages_show_the_image_through_the_item_route(world):
    http = world["http"]
    _sign_in(http, "olive")
    page = http.get(f"/projects/pets/items/{world['ids']['rex']}").text
    assert f'src="{_url(world, "rex")}"' in page  # s3:// shown through the route, which redirects
    _sign_in(http, "ana")
    src = re.findall(r'<img class="item-image" src="([^"]+)"', http.get("/projects/pets/label").text)
    assert len(src) == 1 and src[0] in {_url(world, k) for k in ("tom", "rex", "bad")}


def test_the_items_in_doubt_list_shows_thumbnails(world, store):
    p = projects_svc.create_project(store, {
        "name": "Kinds", "slug": "kinds", "id_field": "id", "overlap": 2, "gold": {"rate": 0},
        "fields": [{"name": "photo", "type": "image", "required": False}, {"name": "note", "type": "text"}],
        "questions": [{"name": "kind", "type": "single_choice", "options": ["cat", "dog"]}]})
    items_svc.add_items(store, p, [{"id": "tom", "photo": "cats/tom.png", "note": "a"}, {"id": "txt", "note": "b"}])
    bob = users_svc.create_user(store, "bob", "annotator", "bob-password")
    ana = users_svc.get_user(store, "ana")
    join(store, "ana", [p])
    join(store, "bob", [p])
    for user, kind in ((ana, "cat"), (bob, "dog"), (ana, "cat"), (bob, "dog")):
        item = queue_svc.claim_next(store, p, user)
        queue_svc.submit(store, item["id"], user, {"kind": kind})
    http = world["http"]
    _sign_in(http, "olive")
    page = http.get("/projects/kinds/doubt").text
    thumbs = re.findall(r'<img class="thumb" src="([^"]+)"', page)
    assert len(thumbs) == 1 and re.fullmatch(r"/projects/kinds/items/\d+/media/photo\?thumb=1", thumbs[0])
    assert "txt" in page  # the item without an image is listed, without a thumbnail
    r = http.get(thumbs[0])
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (256, 192)
