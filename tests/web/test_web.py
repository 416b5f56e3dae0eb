"""The server-rendered pages, through the in-process client (on SQLite and PostgreSQL)."""

from __future__ import annotations

import html
import re
import time

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import FormData

from labelwright.app import create_app
from labelwright.schema import parse_schema
from labelwright.services import items as items_svc
from labelwright.services import projects as projects_svc
from labelwright.services import queue as queue_svc
from labelwright.services import users as users_svc
from labelwright.web.forms import parse_answers
from labelwright.web.markdown import is_safe_url, render_markdown
from labelwright.web.views import image_src
from tests.conftest import SPAM_SCHEMA, held_for, join, post_login, saved_ago

XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]

ALL_TYPES = {
    "name": "All question types", "slug": "all", "id_field": "id",
    "fields": [{"name": "prompt", "type": "text"}, {"name": "a", "type": "markdown"},
               {"name": "b", "type": "markdown"}],
    "questions": [
        {"name": "topic", "type": "multiple_choice", "options": ["x", "y", "z"]},
        {"name": "score", "type": "rating", "min": 0, "max": 10},
        {"name": "pref", "type": "pairwise", "a": "a", "b": "b", "rationale": "required"},
        {"name": "order", "type": "ranking", "candidates": ["a", "b"]},
        {"name": "edit", "type": "text", "prefill": "b"},
    ],
}


def sign_in(http, name: str, password: str) -> None:
    http.cookies.clear()
    r = post_login(http, name, password, follow_redirects=False)
    assert r.status_code == 303, r.text


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name!r} in the page"
    return html.unescape(match.group(1))


def form_action(page: str) -> str:
    return re.search(r'<form method="post" action="([^"]+)" id="answer-form"', page).group(1)


def fieldset(page: str, question: str) -> str:
    """The HTML of one question's fieldset."""
    start = page.index(f'id="q-{question}"')
    return page[start:page.index("</fieldset>", start)]


def answer(http, page: str, **answers) -> object:
    data = {"csrf": hidden(page, "csrf"), "idempotency_key": hidden(page, "idempotency_key"),
            "active_ms": "1234", **answers}
    return http.post(form_action(page), data=data, follow_redirects=False)


@pytest.fixture
def ana(store, spam_project):
    user = users_svc.create_user(store, "ana", "annotator", "ana-password")
    join(store, "ana")
    return user


@pytest.fixture
def signed_in(http, owner, ana, spam_project):
    sign_in(http, "ana", "ana-password")
    return http


# ---- access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/projects/spam/label", "/projects/spam", "/projects/spam/history/1"])
def test_pages_need_sign_in(http, spam_project, path):
    r = http.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={path}"


def test_form_posts_need_the_csrf_token(signed_in, store, spam_project, ana):
    page = signed_in.get("/projects/spam/label").text
    action = form_action(page)
    key = hidden(page, "idempotency_key")
    for data in ({"spam": "ham", "idempotency_key": key}, {"spam": "ham", "idempotency_key": key, "csrf": "x"}):
        r = signed_in.post(action, data=data, follow_redirects=False)
        assert r.status_code == 403
        assert "security token" in r.text
    item_id = action.split("/")[-2]
    assert signed_in.post(f"/projects/spam/items/{item_id}/skip", data={}).status_code == 403
    assert queue_svc.counts_for_user(store, spam_project, ana) == {"done": 0, "left": 10}


def test_owner_only_project_page(http, owner, ana, spam_project):
    sign_in(http, "ana", "ana-password")
    r = http.get("/projects/spam")
    assert r.status_code == 403
    index = http.get("/").text
    # a new annotator starts on the briefing (the project's terms), which links to the labelling page
    assert 'href="/projects/spam/start"' in index and 'href="/projects/spam"' not in index

    sign_in(http, "olive", "owner-password")
    index = http.get("/").text
    assert 'href="/projects/spam"' in index and 'href="/projects/spam/label"' in index
    r = http.get("/projects/spam")
    assert r.status_code == 200
    for fmt in ("jsonl", "csv", "parquet"):
        assert f'href="/api/v1/projects/spam/export?format={fmt}"' in r.text
    assert r.text.count('class="bar"') == 60
    assert http.get("/api/v1/projects/spam/export?format=csv").status_code == 200  # the session cookie works


# ---- labelling ------------------------------------------------------------------------------------


def test_label_page_renders_item_counts_and_security_headers(signed_in):
    r = signed_in.get("/projects/spam/label")
    assert r.status_code == 200
    assert '<div class="text">comment 0</div>' in r.text
    assert re.search(r"<strong>0</strong> done</span> <span><strong>10</strong> left", r.text)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "<script>" not in r.text and " style=" not in r.text and " onclick=" not in r.text
    assert re.search(r'<script type="module" src="/static/[0-9a-f]{12}/label\.js"></script>', r.text)  # versioned
    assert signed_in.get("/projects/spam/label").text.count("comment 0") == 1  # a reload keeps the item


def item_in(page: str) -> int:
    return int(re.search(r"/items/(\d+)/submit", form_action(page)).group(1))


def test_submit_via_form_and_double_submit(signed_in, store, spam_project, ana):
    page = signed_in.get("/projects/spam/label").text
    held_for(store, item_in(page), ana.id, 5)  # the 1234 ms the form reports fit in the time it was held
    r = answer(signed_in, page, spam="ham")
    assert r.status_code == 303 and r.headers["location"] == "/projects/spam/label"
    assert answer(signed_in, page, spam="ham").status_code == 303  # the same form again: no second answer
    nxt = signed_in.get("/projects/spam/label").text
    assert "comment 1" in nxt and re.search(r"<strong>1</strong> done", nxt)
    saved = queue_svc.history(store, spam_project, ana)
    assert [(h["external_id"], h["answers"], h["active_ms"]) for h in saved] == [("c0", {"spam": "ham"}, 1234)]


def test_invalid_answer_rerenders_with_error_next_to_question(signed_in, store, spam_project, ana):
    page = signed_in.get("/projects/spam/label").text
    r = answer(signed_in, page)
    assert r.status_code == 422
    assert "an answer is required" in fieldset(r.text, "spam")
    assert 'class="question q-single_choice has-error"' in r.text
    assert "comment 0" in r.text
    assert hidden(r.text, "idempotency_key") == hidden(page, "idempotency_key")

    r = answer(signed_in, r.text, spam="maybe")
    assert r.status_code == 422
    assert "&#39;maybe&#39; is not an option" in fieldset(r.text, "spam")
    assert answer(signed_in, r.text, spam="spam").status_code == 303
    assert queue_svc.counts_for_user(store, spam_project, ana)["done"] == 1


def test_skip(signed_in, store, spam_project, ana):
    page = signed_in.get("/projects/spam/label").text
    skip_action = re.search(r'action="([^"]+/skip)"', page).group(1)
    r = signed_in.post(skip_action, data={"csrf": hidden(page, "csrf")}, follow_redirects=False)
    assert r.status_code == 303
    assert "comment 1" in signed_in.get("/projects/spam/label").text
    assert queue_svc.counts_for_user(store, spam_project, ana) == {"done": 0, "left": 9}


def test_amend_goes_back_through_history(signed_in, store, spam_project, ana):
    for choice in ("ham", "spam"):
        page = signed_in.get("/projects/spam/label").text
        held_for(store, item_in(page), ana.id, 5)
        assert answer(signed_in, page, spam=choice).status_code == 303
    first, second = reversed(queue_svc.history(store, spam_project, ana))
    saved_ago(store, first["id"], 5)  # an amend claims at most the time since the last save
    page = signed_in.get("/projects/spam/label").text
    assert f'id="back-link" href="/projects/spam/history/{second["id"]}"' in page

    newest = signed_in.get(f"/projects/spam/history/{second['id']}").text
    assert "comment 1" in newest
    assert f'id="back-link" href="/projects/spam/history/{first["id"]}"' in newest  # Backspace goes further
    older = signed_in.get(f"/projects/spam/history/{first['id']}").text
    assert "comment 0" in older and 'id="back-link"' not in older
    assert re.search(r'value="ham" data-key="2"\s+checked', older)  # the saved answer is shown

    r = signed_in.post(f"/projects/spam/history/{first['id']}", data={"csrf": hidden(older, "csrf")})
    assert r.status_code == 422 and "an answer is required" in r.text
    r = signed_in.post(f"/projects/spam/history/{first['id']}",
                       data={"csrf": hidden(older, "csrf"), "spam": "spam", "active_ms": "500"},
                       follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/projects/spam/label"
    assert "comment 2" in signed_in.get("/projects/spam/label").text  # the held item comes back
    amended = queue_svc.history(store, spam_project, ana)[-1]
    assert amended["answers"] == {"spam": "spam"} and amended["revision"] == 2
    assert amended["active_ms"] == 1234 + 500


def test_annotators_never_see_each_others_answers(http, store, owner, ana, make_annotator, spam_project):
    users_svc.set_password(store, make_annotator("bob")[0], "bob-password")
    sign_in(http, "ana", "ana-password")
    answer(http, http.get("/projects/spam/label").text, spam="spam")
    ann = queue_svc.history(store, spam_project, ana)[0]
    sign_in(http, "bob", "bob-password")
    r = http.get(f"/projects/spam/history/{ann['id']}")
    assert r.status_code == 403 and "comment 0" not in r.text
    r = http.post(f"/projects/spam/history/{ann['id']}", data={"csrf": hidden(r.text, "csrf"), "spam": "ham"})
    assert r.status_code == 403
    bob_page = http.get("/projects/spam/label").text
    assert "comment 0" in bob_page and "checked" not in bob_page  # same item, none of ana's choices


def test_expired_lease_shows_a_conflict_with_a_way_on(http, store, owner, ana, make_annotator):
    p = projects_svc.create_project(store, {**SPAM_SCHEMA, "slug": "solo", "overlap": 1})
    join(store, "ana", [p])
    items_svc.add_items(store, p, [{"id": "only", "text": "the only item"}])
    sign_in(http, "ana", "ana-password")
    page = http.get("/projects/solo/label").text
    queue_svc.claim_next(store, p, make_annotator("bob")[0], now=time.time() + p.lease_seconds + 5)
    r = answer(http, page, spam="spam")
    assert r.status_code == 409
    assert "expired" in r.text and 'href="/projects/solo/label"' in r.text
    assert "All done" in http.get("/projects/solo/label").text


def test_every_question_type_through_the_form(http, store, owner, ana):
    p = projects_svc.create_project(store, ALL_TYPES)
    join(store, "ana", [p])
    items_svc.add_items(store, p, [{"id": "i1", "prompt": "Say hi", "a": "Hi", "b": "Hello\nthere"}])
    sign_in(http, "ana", "ana-password")
    page = http.get("/projects/all/label").text
    assert ">\nHello\nthere</textarea>" in fieldset(page, "edit")  # pre-filled from field b
    assert 'data-key="0"' in fieldset(page, "score")  # a 0..10 scale: the key is the value

    base = {"topic": ["x", "z"], "score": "0", "pref": "B", "order.rank.a": "2", "order.rank.b": "2",
            "edit": "Hello there"}
    r = answer(http, page, **base)
    assert r.status_code == 422
    assert "one candidate only" in fieldset(r.text, "order")
    r = answer(http, r.text, **{**base, "order.rank.a": "2", "order.rank.b": "1"})
    assert r.status_code == 422
    assert "a written rationale is required" in fieldset(r.text, "pref")
    assert re.search(r'value="z" data-key="3"\s+checked', r.text)  # what was chosen stays chosen
    r = answer(http, r.text, **{**base, "order.rank.b": "1", "pref.rationale": "warmer\r\ntone"})
    assert r.status_code == 303, r.text
    saved = queue_svc.history(store, p, ana)[0]["answers"]
    assert saved == {"topic": ["x", "z"], "score": 0, "pref": {"choice": "B", "rationale": "warmer\ntone"},
                     "order": ["b", "a"], "edit": "Hello there"}


# ---- untrusted content ----------------------------------------------------------------------------


def test_item_markup_is_escaped(http, store, owner, ana):
    schema = {"name": "Hostile", "slug": "hostile", "id_field": "id",
              "instructions": "Read <script>alert(1)</script> [x](javascript:alert(1))",
              "fields": [{"name": "plain", "type": "text"}, {"name": "rich", "type": "markdown"},
                         {"name": "chat", "type": "chat"}, {"name": "pic", "type": "image"}],
              "questions": [{"name": "ok", "type": "single_choice",
                             "options": [{"value": "yes", "label": XSS[1]}, "no"]}]}
    p = projects_svc.create_project(store, schema)
    join(store, "ana", [p])
    text = "\n".join(XSS)
    items_svc.add_items(store, p, [{"id": "h1", "plain": text, "rich": text, "pic": "javascript:alert(1)",
                                    "chat": [{"role": XSS[0], "content": text}]}])
    sign_in(http, "ana", "ana-password")
    page = http.get("/projects/hostile/label").text
    for bad in XSS + ["javascript:alert(1)\"", 'href="javascript']:
        assert bad not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # text, markdown, chat x2, instructions
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 4  # text, markdown, chat, option label
    assert "<code>javascript:alert(1)</code>" in page  # an image URL that is not http(s): shown as text


def test_markdown_is_sanitised():
    out = str(render_markdown("# T\n\n<b>x</b> [a](javascript:alert(1)) [b](JaVaScRiPt:x) [c](https://e.org)\n\n"
                              "```\n<script>\n```\n\n![i](data:text/html,x)"))
    assert "<b>" not in out and "&lt;b&gt;x&lt;/b&gt;" in out
    assert "[a](javascript:alert(1))" in out and 'href="javascript' not in out.lower()  # left as text
    assert '<a href="https://e.org" rel="nofollow noopener noreferrer">c</a>' in out
    assert "<pre><code>&lt;script&gt;\n</code></pre>" in out
    assert "<img" not in out
    assert not is_safe_url("java\tscript:alert(1)") and not is_safe_url(" vbscript:x")
    assert is_safe_url("/relative/page") and is_safe_url("mailto:a@b.org")
    assert str(render_markdown(None)) == ""


def test_parse_answers_leaves_out_unanswered_questions():

    schema = parse_schema(ALL_TYPES)
    parsed = parse_answers(schema, FormData([("csrf", "t")]))
    assert parsed.answers == {"topic": []} and not parsed.errors
    parsed = parse_answers(schema, FormData([("pref.rationale", "because"), ("order.rank.a", "1")]))
    assert parsed.answers["pref"] == {"choice": None, "rationale": "because"}
    assert parsed.answers["order"] == ["a"]  # partial: the schema will say every candidate is needed


# ---- images ---------------------------------------------------------------------------------------


def test_image_sources():
    assert image_src("https://e.org/a.png", False) == "https://e.org/a.png"
    assert image_src("cats/a b.png", True) == "/media/cats/a%20b.png"
    assert image_src("cats/a.png", False) is None
    assert image_src("cats/a.png", True, "/projects/p/items/1/media/img") == "/projects/p/items/1/media/img"
    assert image_src("s3://b/k.png", True, "/projects/p/items/1/media/img") == "/projects/p/items/1/media/img"
    assert image_src("s3://b/k.png", True) is None  # resolved only on an item's media route
    for bad in ("javascript:alert(1)", "data:image/png;base64,xx", "/etc/passwd", "file:///etc/passwd"):
        assert image_src(bad, True) is None
        assert image_src(bad, True, "/projects/p/items/1/media/img") is None


@pytest.fixture
def media_http(settings, store, tmp_path):
    root = tmp_path / "media"
    (root / "cats").mkdir(parents=True)
    (root / "cats" / "tom.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (root / "notes.txt").write_text("not an image")
    (tmp_path / "secret.png").write_bytes(b"secret")
    app = create_app(settings.with_(media_root=root), store=store)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def test_media_files_stay_inside_media_root(media_http, store, owner, ana):
    p = projects_svc.create_project(store, {"name": "Pics", "slug": "pics", "id_field": "id",
                                            "fields": [{"name": "img", "type": "image"}],
                                            "questions": [{"name": "cat", "type": "single_choice",
                                                           "options": ["yes", "no"]}]})
    join(store, "ana", [p])
    items_svc.add_items(store, p, [{"id": "p1", "img": "cats/tom.png"}])
    assert media_http.get("/media/cats/tom.png", follow_redirects=False).status_code == 303  # signed out
    sign_in(media_http, "ana", "ana-password")
    src = re.search(r'<img class="item-image" src="([^"]+)"', media_http.get("/projects/pics/label").text)[1]
    assert re.fullmatch(r"/projects/pics/items/\d+/media/img", src)  # the item's media route (tests/web/test_media.py)
    r = media_http.get(src)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "sandbox" in r.headers["content-security-policy"]
    # by path, only for the schema preview of those who may create projects
    assert media_http.get("/media/cats/tom.png").status_code == 403
    sign_in(media_http, "olive", "owner-password")
    assert media_http.get("/media/cats/tom.png").status_code == 200
    for path in ("/media/../secret.png", "/media/%2e%2e/secret.png", "/media/cats/..%2f..%2fsecret.png",
                 "/media//etc/hostname", "/media/notes.txt", "/media/cats/missing.png"):
        assert media_http.get(path).status_code == 404, path
