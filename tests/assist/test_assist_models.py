"""labelwright.assist.models: bring-your-own-model adapters, against a real local HTTP server and real modules.

``FakeModelServer`` is an ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (port 0) in a thread; each test
sets ``server.respond`` (request body -> status or None to hang up, raw reply bytes, optional headers,
optional delay) and reads ``server.requests``. The Python adapter loads tests/assist_model_fixture.py; the
example server (examples/model_server.py) is started as a real process.
"""

from __future__ import annotations

import ast
import doctest
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

import labelwright.assist.models as models_module
from labelwright.assist.models import (
    HttpModel,
    ModelError,
    Predictor,
    PythonModel,
    load_model,
)
from tests.server import free_port, port_open

REPO = Path(__file__).resolve().parents[2]
LABELS = ["spam", "ham"]
FIXTURE = "python:tests.assist_model_fixture"


def items(n: int, start: int = 1) -> list[dict]:
    return [{"id": i, "data": {"text": f"comment {i}"}} for i in range(start, start + n)]


def good_reply(body: dict, version: str = "my-model-3") -> dict:
    """Every item back, in reverse order, with probabilities that sum to 2 (so normalisation shows)."""
    return {"model_version": version,
            "predictions": [{"id": item["id"], "probabilities": {body["labels"][0]: 1.5, body["labels"][1]: 0.5}}
                            for item in reversed(body["items"])]}


class FakeModelServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.respond = lambda body: (200, json.dumps(good_reply(body)).encode())
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, raw, *rest = fake.respond(body)
                if status is None:  # hang up without a reply
                    self.close_connection = True
                    return
                headers = rest[0] if rest else {}
                if len(rest) > 1:
                    time.sleep(rest[1])
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:  # the client gave up (the timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/predict"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def reply_json(self, make):
        self.respond = lambda body: (200, json.dumps(make(body)).encode())


@pytest.fixture(scope="module")
def running_server():
    server = FakeModelServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def server(running_server):
    running_server.requests.clear()
    running_server.respond = lambda body: (200, json.dumps(good_reply(body)).encode())
    return running_server


@pytest.fixture
def model(server):
    with HttpModel(server.url, question="spam", timeout=5) as m:
        yield m


# ---- HTTP: the happy path ----------------------------------------------------------------------------


def test_http_request_and_normalised_reply(server, model):
    assert model.version == f"http:127.0.0.1:{server.url.split(':')[2]}"  # before any reply: host + path
    assert server.requests == []  # nothing sent on construction
    p = model.predict_proba(items(3, start=17), LABELS)
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req["path"] == "/predict"
    assert req["body"] == {"question": "spam", "labels": LABELS, "items": items(3, start=17)}
    assert req["headers"]["Content-Type"] == "application/json"
    assert p.shape == (3, 2) and p.dtype == np.float64
    np.testing.assert_allclose(p, [[0.75, 0.25]] * 3)  # 1.5 : 0.5, out-of-order ids matched back
    assert model.version == "my-model-3"
    assert isinstance(model, Predictor)


def test_http_batches(server, model):
    model.batch_size = 64
    p = model.predict_proba(items(130), LABELS)
    sizes = [len(r["body"]["items"]) for r in server.requests]
    assert sizes == [64, 64, 2]
    sent = [item["id"] for r in server.requests for item in r["body"]["items"]]
    assert sent == list(range(1, 131))
    assert p.shape == (130, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_http_rows_in_item_order(server, model):
    server.reply_json(lambda body: {"model_version": "v", "predictions": [
        {"id": item["id"], "probabilities": {"spam": item["id"], "ham": 10 - item["id"]}}
        for item in reversed(body["items"])]})
    p = model.predict_proba(items(4), LABELS)
    np.testing.assert_allclose(p[:, 0], [0.1, 0.2, 0.3, 0.4])


def test_http_left_out_labels_count_as_zero(server, model):
    server.reply_json(lambda body: {"model_version": "v", "predictions": [
        {"id": item["id"], "probabilities": {"ham": 0.4}} for item in body["items"]]})
    p = model.predict_proba(items(2), LABELS)
    np.testing.assert_allclose(p, [[0.0, 1.0], [0.0, 1.0]])


def test_http_rating_labels_as_string_keys(server, model):
    server.reply_json(lambda body: {"model_version": "rater-1", "predictions": [
        {"id": item["id"], "probabilities": {"1": 0.1, "3": 0.3, "5": 0.6}} for item in body["items"]]})
    p = model.predict_proba(items(2), [1, 2, 3, 4, 5])
    assert server.requests[0]["body"]["labels"] == [1, 2, 3, 4, 5]  # sent as JSON numbers
    np.testing.assert_allclose(p, [[0.1, 0, 0.3, 0, 0.6]] * 2)


def test_http_numpy_labels_are_sent_as_numbers(server, model):
    p = model.predict_proba(items(1), np.array([1, 2]))
    assert server.requests[0]["body"]["labels"] == [1, 2]
    np.testing.assert_allclose(p, [[0.75, 0.25]])


def test_http_version_follows_latest_reply(server, model):
    server.reply_json(lambda body: good_reply(body, "model-a"))
    model.predict_proba(items(1), LABELS)
    assert model.version == "model-a"
    server.reply_json(lambda body: good_reply(body, "model-b"))
    model.predict_proba(items(1), LABELS)
    assert model.version == "model-b"


def test_http_version_change_within_one_call_is_refused(server, model):
    versions = iter(["model-a", "model-b"])
    server.reply_json(lambda body: good_reply(body, next(versions)))
    model.batch_size = 2
    with pytest.raises(ModelError, match=r"batch 2 of 2: model_version changed from 'model-a' to 'model-b'"):
        model.predict_proba(items(3), LABELS)


def test_http_headers_and_no_items(server):
    with HttpModel(server.url, question="spam", headers={"Authorization": "Bearer s3cret"}) as m:
        assert m.predict_proba([], LABELS).shape == (0, 2)
        assert server.requests == []  # nothing to ask
        m.predict_proba(items(1), LABELS)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
    with pytest.raises(RuntimeError, match="closed"):
        m.predict_proba(items(1), LABELS)


def test_http_transport_is_used():
    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=good_reply(seen[-1], "via-transport"))

    with HttpModel("http://models.invalid/p", question="q", transport=httpx.MockTransport(handler)) as m:
        np.testing.assert_allclose(m.predict_proba(items(2), LABELS), [[0.75, 0.25]] * 2)
    assert m.version == "via-transport" and seen[0]["question"] == "q"


def test_http_version_and_messages_hide_credentials_and_query():
    m = HttpModel("https://user:pw@Models.example.org:8443/v1/predict?token=abc", question="q")
    assert m.version == "http:models.example.org:8443/v1/predict"
    assert "pw" not in repr(m) and "abc" not in repr(m)
    m.close()


# ---- HTTP: failures --------------------------------------------------------------------------------


def test_http_timeout(server):
    server.respond = lambda body: (200, json.dumps(good_reply(body)).encode(), {}, 2.0)
    with HttpModel(server.url, question="spam", timeout=0.2) as m:
        started = time.perf_counter()
        with pytest.raises(ModelError, match=r"model at http://127\.0\.0\.1:\d+/predict: no reply within 0\.2 s"):
            m.predict_proba(items(1), LABELS)
        assert time.perf_counter() - started < 1.5
    assert len(server.requests) == 1  # no retry


def test_http_connect_error():
    url = f"http://127.0.0.1:{free_port()}/predict"
    with HttpModel(url, question="spam", timeout=2) as m, pytest.raises(ModelError) as e:
        m.predict_proba(items(1), LABELS)
    assert str(e.value).startswith(f"model at {url}: cannot connect (ConnectError")
    assert e.value.status == 502


def test_http_server_hangs_up(server, model):
    server.respond = lambda body: (None, b"")
    with pytest.raises(ModelError, match=r"predict: the connection failed \(RemoteProtocolError"):
        model.predict_proba(items(1), LABELS)
    assert len(server.requests) == 1


def test_http_500_not_retried(server, model):
    server.respond = lambda body: (500, b'{"error": "out of memory"}')
    with pytest.raises(ModelError, match=r"predict: HTTP 500: .*out of memory"):
        model.predict_proba(items(3), LABELS)
    assert len(server.requests) == 1


def test_http_redirect_not_followed(server, model):
    server.respond = lambda body: (307, b"", {"Location": "http://elsewhere.invalid/predict"})
    with pytest.raises(ModelError, match=r"HTTP 307 redirect to 'http://elsewhere.invalid/predict'; redirects "
                                         r"are not followed"):
        model.predict_proba(items(1), LABELS)
    assert len(server.requests) == 1


def test_http_invalid_json(server, model):
    server.respond = lambda body: (200, b'{"model_version": "v", "predictions": [')
    with pytest.raises(ModelError, match=r"the reply is not valid JSON"):
        model.predict_proba(items(1), LABELS)


@pytest.mark.parametrize(("reply", "message"), [
    ([], r"the reply must be a JSON object with 'model_version' and 'predictions'"),
    ({"predictions": []}, r"'model_version' must be a non-empty string"),
    ({"model_version": "", "predictions": []}, r"'model_version' must be a non-empty string"),
    ({"model_version": "v", "predictions": {}}, r"'predictions' must be a list, got dict"),
    ({"model_version": "v", "predictions": [{"id": 1}]},
     r"prediction 0 must be an object with 'id' and 'probabilities'"),
])
def test_http_reply_shape(server, model, reply, message):
    server.reply_json(lambda body: reply)
    with pytest.raises(ModelError, match=message):
        model.predict_proba(items(1), LABELS)


def test_http_missing_id(server, model):
    server.reply_json(lambda body: {"model_version": "v", "predictions": good_reply(body)["predictions"][1:]})
    with pytest.raises(ModelError, match=r"no prediction for 1 of the 3 items sent \(3\); every item sent must "
                                         r"come back once"):
        model.predict_proba(items(3), LABELS)


def test_http_extra_and_duplicate_id(server, model):
    def extra(body):
        reply = good_reply(body)
        reply["predictions"].append({"id": 99, "probabilities": {"spam": 1}})
        return reply
    server.reply_json(extra)
    with pytest.raises(ModelError, match=r"prediction 2: item 99 was not sent in this request"):
        model.predict_proba(items(2), LABELS)

    def twice(body):
        reply = good_reply(body)
        reply["predictions"].append(reply["predictions"][0])
        return reply
    server.reply_json(twice)
    with pytest.raises(ModelError, match=r"prediction 2 \(item 2\): item 2 comes back more than once"):
        model.predict_proba(items(2), LABELS)


def test_http_id_type_must_match(server, model):
    server.reply_json(lambda body: {"model_version": "v", "predictions": [
        {"id": str(item["id"]), "probabilities": {"spam": 1}} for item in body["items"]]})
    with pytest.raises(ModelError, match=r"prediction 0: item '1' was not sent"):
        model.predict_proba(items(1), LABELS)


def test_http_unknown_label(server, model):
    def reply(body):
        out = good_reply(body)
        out["predictions"][3]["probabilities"] = {"maybe": 1.0}
        return out
    server.reply_json(reply)
    with pytest.raises(ModelError) as e:
        model.predict_proba(items(5, start=14), LABELS)
    port = server.url.split(":")[2].split("/")[0]
    assert str(e.value) == (f"model at http://127.0.0.1:{port}/predict: prediction 3 (item 15): unknown label "
                            "'maybe'; labels are ['spam', 'ham']")


@pytest.mark.parametrize(("raw_value", "message"), [
    ("NaN", r"probability of 'spam' is nan, not a finite number"),
    ("Infinity", r"probability of 'spam' is inf, not a finite number"),
    ("1e400", r"probability of 'spam' is inf, not a finite number"),
    ("-0.1", r"probability of 'spam' is -0.1, below 0"),
    ("1" + "0" * 400, r"probability of 'spam' is an integer too large for a float"),
    ('"0.5"', r"probability of 'spam' is '0.5', not a number"),
    ("true", r"probability of 'spam' is True, not a number"),
    ("null", r"probability of 'spam' is None, not a number"),
])
def test_http_bad_values(server, model, raw_value, message):
    raw = ('{"model_version": "v", "predictions": [{"id": 1, "probabilities": {"ham": 0.5}}, '
           '{"id": 2, "probabilities": {"spam": RAW, "ham": 0.5}}]}').replace("RAW", raw_value)
    server.respond = lambda body: (200, raw.encode())
    with pytest.raises(ModelError, match=r"prediction 1 \(item 2\): " + message):
        model.predict_proba(items(2), LABELS)


@pytest.mark.parametrize("probabilities", [{"spam": 0, "ham": 0}, {}])
def test_http_zero_row(server, model, probabilities):
    server.reply_json(lambda body: {"model_version": "v", "predictions": [
        {"id": 1, "probabilities": probabilities}]})
    with pytest.raises(ModelError, match=r"prediction 0 \(item 1\): every probability is 0 \(or left out\)"):
        model.predict_proba(items(1), LABELS)


def test_http_huge_values_normalise_without_overflow(server, model):
    raw = b'{"model_version": "v", "predictions": [{"id": 1, "probabilities": {"spam": 1e308, "ham": 1e308}}]}'
    server.respond = lambda body: (200, raw)
    np.testing.assert_allclose(model.predict_proba(items(1), LABELS), [[0.5, 0.5]])


def test_http_bad_arguments():
    with pytest.raises(ValueError, match=r"a model URL must be http\(s\)://host"):
        HttpModel("ftp://example.org/predict", question="q")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        HttpModel("http://127.0.0.1:1/p", question="q", batch_size=0)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        HttpModel("http://127.0.0.1:1/p", question="q", timeout=0)
    with HttpModel("http://127.0.0.1:1/p", question="q") as m:
        with pytest.raises(ValueError, match="labels must be distinct; 'spam' appears twice"):
            m.predict_proba(items(1), ["spam", "spam"])
        with pytest.raises(ValueError, match="labels must be a non-empty list"):
            m.predict_proba(items(1), [])
        with pytest.raises(ValueError, match="item ids must be distinct; 1 appears twice"):
            m.predict_proba(items(1) + items(1), LABELS)
        with pytest.raises(TypeError, match=r"item 0 must be \{'id': ..., 'data'"):
            m.predict_proba([{"id": 1, "text": "no data"}], LABELS)
        with pytest.raises(TypeError, match=r"item 0: id 1.5 is neither an int nor a string"):
            m.predict_proba([{"id": 1.5, "data": {}}], LABELS)
        with pytest.raises(TypeError, match=r"label 0.5 at position 1 is neither a string nor an int"):
            m.predict_proba(items(1), ["spam", 0.5])
        with pytest.raises(TypeError, match=r"labels must be a list"):
            m.predict_proba(items(1), "spam")


# ---- Python entry points ----------------------------------------------------------------------------

SPAMMY = [{"id": 10, "data": {"text": "WIN a FREE phone, click here"}},
          {"id": 11, "data": {"text": "nice video"}}]


def test_python_class():
    m = PythonModel(f"{FIXTURE}:KeywordModel", question="spam")
    assert m.version == "keyword-fixture-2"
    assert isinstance(m, Predictor)
    p = m.predict_proba(SPAMMY, LABELS)
    np.testing.assert_allclose(p, [[0.9, 0.1], [0.1, 0.9]])
    assert m.model.calls == [(2, LABELS)]  # instantiated once, called with (items, labels)
    m.model.version = "keyword-fixture-3"  # retrained: the version is read live
    assert m.version == "keyword-fixture-3"


def test_python_function_with_dicts_and_left_out_labels():
    m = load_model(f"{FIXTURE}:predict", question="spam")
    assert isinstance(m, PythonModel)
    assert m.version == f"{FIXTURE}:predict"  # a function has no version: the spec is the version
    p = m.predict_proba(SPAMMY, LABELS)
    np.testing.assert_allclose(p, [[0.9, 0.1], [1.0, 0.0]])  # 'ham' left out for item 11 counts as 0


def test_python_rating_keys_as_strings_or_ints():
    m = load_model(f"{FIXTURE}:rating", question="quality")
    np.testing.assert_allclose(m.predict_proba(SPAMMY, [1, 2, 3, 4, 5]), [[0.25, 0, 0, 0, 0.75]] * 2)


def test_python_label_given_twice():
    m = load_model(f"{FIXTURE}:twice", question="quality")
    with pytest.raises(ModelError, match=r"prediction 0 \(item 10\): label 1 is given twice"):
        m.predict_proba(SPAMMY, [1, 2, 3])


def test_python_object_without_string_version():
    m = load_model(f"{FIXTURE}:instance", question="spam")
    assert m.version == f"{FIXTURE}:instance"
    assert m.predict_proba(SPAMMY[:1], LABELS).shape == (1, 2)


def test_python_no_items_does_not_call_the_model():
    m = PythonModel(f"{FIXTURE}:KeywordModel", question="spam")
    assert m.predict_proba([], LABELS).shape == (0, 2)
    assert m.model.calls == []


@pytest.mark.parametrize(("attr", "message"), [
    ("wrong_shape", r"the result has shape \(2, 3\); expected \(2, 2\)"),
    ("with_nan", r"row 1 \(item 11\): probability of 'spam' is nan, not a finite number"),
    ("negative", r"prediction 1 \(item 11\): probability of 'spam' is -0.1, below 0"),
    ("unknown_label", r"prediction 0 \(item 10\): unknown label 'maybe'; labels are \['spam', 'ham'\]"),
    ("all_zero", r"row 0 \(item 10\): every probability is 0"),
    ("raises", r"raised RuntimeError: the GPU is on fire"),
    ("too_few", r"1 predictions for 2 items; give one per item, in item order"),
    ("not_numbers", r"the result is neither a 2-D array of numbers nor a list of \{label: probability\} dicts"),
])
def test_python_bad_results(attr, message):
    m = PythonModel(f"{FIXTURE}:{attr}", question="spam")
    with pytest.raises(ModelError, match=message) as e:
        m.predict_proba(SPAMMY, LABELS)
    assert str(e.value).startswith(f"model {FIXTURE}:{attr}")
    assert e.value.status == 502


def test_python_model_exception_is_chained():
    m = PythonModel(f"{FIXTURE}:raises", question="spam")
    with pytest.raises(ModelError) as e:
        m.predict_proba(SPAMMY, LABELS)
    assert isinstance(e.value.__cause__, RuntimeError)


@pytest.mark.parametrize(("spec", "message"), [
    ("python:tests.no_such_module:Model",
     r"python:tests.no_such_module:Model: cannot import 'tests.no_such_module' \(ModuleNotFoundError"),
    (f"{FIXTURE}:Missing", rf"{FIXTURE}:Missing: 'tests.assist_model_fixture' has no attribute 'Missing'"),
    (f"{FIXTURE}:NeedsArguments", r"NeedsArguments\(\) failed \(TypeError: .*constructible with no arguments"),
    (f"{FIXTURE}:not_a_model", r"not_a_model: int 42 is not a model"),
])
def test_python_load_errors(spec, message):
    with pytest.raises(ModelError, match=message):
        load_model(spec, question="spam")


# ---- load_model --------------------------------------------------------------------------------------


def test_load_model_dispatch(server):
    m = load_model(server.url, question="spam", timeout=3.5)
    assert isinstance(m, HttpModel) and m.timeout == 3.5 and m.question == "spam"
    assert server.requests == []  # loading sends nothing
    m.close()
    assert isinstance(load_model(f"{FIXTURE}:predict", question="spam"), PythonModel)


@pytest.mark.parametrize("spec", ["ftp://example.org/p", "model.pkl", "", "python:", "python:module_only",
                                  "tests.assist_model_fixture:predict"])
def test_load_model_rejects_other_specs(spec):
    with pytest.raises(ValueError, match=r"python:package\.module:attr"):
        load_model(spec, question="spam")


# ---- the library boundary and the docstring ------------------------------------------------------------


def test_module_imports_nothing_from_the_server():
    tree = ast.parse(Path(models_module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    labelwright = {name for name in imported if name.startswith("labelwright")}
    assert labelwright == {"labelwright.errors"}


def test_docstring_examples_run():
    result = doctest.testmod(models_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


# ---- the example server --------------------------------------------------------------------------------


@pytest.mark.slow
def test_example_model_server():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "examples" / "model_server.py"), "--port", str(port),
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 15
        while not port_open(port):
            assert proc.poll() is None, "the example server exited"
            assert time.monotonic() < deadline, "the example server did not start"
            time.sleep(0.05)
        assert proc.stdout.readline().strip() == f"serving keyword-spam-1 on http://127.0.0.1:{port}/predict"
        data = [{"id": 1, "data": {"text": "WIN a FREE phone, click here http://spam.example"}},
                {"id": 2, "data": {"text": "I love this song, my favourite part is the chorus"}},
                {"id": 3, "data": {"text": "Check out my channel and subscribe to my page for free"}}]
        with load_model(f"http://127.0.0.1:{port}/predict", question="spam") as m:
            p = m.predict_proba(data, LABELS)
            assert m.version == "keyword-spam-1"
            assert p[0, 0] > 0.8 and p[1, 0] < 0.2 and p[2, 0] > 0.8
            np.testing.assert_allclose(p.sum(axis=1), 1.0)
            rating = m.predict_proba(data[:1], [1, 2, 3, 4])
            np.testing.assert_allclose(rating, [[0.25] * 4])  # no spam label: a uniform guess
        with HttpModel(f"http://127.0.0.1:{port}/nowhere", question="spam") as m, \
                pytest.raises(ModelError, match="HTTP 404"):
            m.predict_proba(data, LABELS)
        # the curl example in docs/assist.md shows this server's real reply
        docs = (REPO / "docs" / "assist.md").read_text()
        section = docs[docs.index("## Bring your own model"):]
        request = json.loads(section.split("-d '")[1].split("'\n")[0])
        shown = json.loads(next(line for line in section.splitlines()
                                if line.startswith('{"model_version": "keyword-spam-1"')))
        assert httpx.post(f"http://127.0.0.1:{port}/predict", json=request, timeout=5).json() == shown
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
