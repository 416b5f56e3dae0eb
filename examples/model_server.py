"""An example model server for labelwright's "bring your own model" HTTP protocol (docs/assist.md).

A naive spam scorer using only the standard library: it counts spam words and phrases in an item's text
fields and turns the count into a probability. It is here to show the protocol, not to be a good model::

    python examples/model_server.py --port 9000

    curl -s http://127.0.0.1:9000/predict -H 'Content-Type: application/json' -d '{"question": "spam",
      "labels": ["spam", "ham"], "items": [{"id": 17, "data": {"text": "WIN a FREE phone, click here"}}]}'
    {"model_version": "keyword-spam-1",
     "predictions": [{"id": 17, "probabilities": {"spam": 0.880797, "ham": 0.119203}}]}

``POST /predict`` takes ``{"question": ..., "labels": [...], "items": [{"id": ..., "data": {...}}]}``
and answers ``{"model_version": ..., "predictions": [{"id": ..., "probabilities": {label: p}}]}``. The
label ``spam`` (or ``yes``/``true`` for a yes/no question) gets the spam probability and the other labels
share the rest; a question with none of those labels (a rating, say) gets a uniform guess. A request that
is not valid JSON or does not have that shape gets a 400 with a message; ``GET /healthz`` answers ``ok``.
It binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL_VERSION = "keyword-spam-1"
MAX_BODY = 10 * 1024 * 1024
SPAM_WORDS = frozenset({
    "free", "win", "winner", "won", "prize", "cash", "money", "offer", "click", "subscribe", "sub", "check",
    "channel", "visit", "http", "https", "www", "giveaway", "promo", "discount", "deal", "cheap", "buy",
    "earn", "bitcoin", "crypto", "followers", "viagra", "loan"
})
SPAM_PHRASES = ("check out my", "click here", "sub to my", "subscribe to my", "make money", "for free")
POSITIVE = frozenset({"spam", "yes", "true"})


def spam_probability(text: str) -> float:
    """A logistic score of the spam words and phrases in ``text``: 0 hits ~0.12, 2 hits 0.5, 4 hits ~0.88."""
    lowered = text.lower()
    hits = sum(word in SPAM_WORDS for word in re.findall(r"[a-z]+", lowered))
    hits += sum(phrase in lowered for phrase in SPAM_PHRASES)
    return 1.0 / (1.0 + math.exp(-(hits - 2)))


def item_text(data: dict) -> str:
    """Every string field of the item, joined: the model does not need to know the schema."""
    return "\n".join(value for value in data.values() if isinstance(value, str))


def predict(body: dict) -> dict:
    """The reply to one request body; ``ValueError`` when the body does not have the protocol's shape."""
    labels, items = body.get("labels"), body.get("items")
    if not isinstance(labels, list) or not labels or not isinstance(items, list):
        raise ValueError("the body must be {'question': ..., 'labels': [...], 'items': [...]}")
    positive = [label for label in labels if isinstance(label, str) and label.lower() in POSITIVE][:1]
    others = [label for label in labels if label not in positive]
    predictions = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or not isinstance(item.get("data"), dict):
            raise ValueError(f"item {i} must be {{'id': ..., 'data': {{...}}}}")
        p = spam_probability(item_text(item["data"])) if positive else 0.0
        probabilities = {str(label): round(p, 6) for label in positive}
        if others:  # the rest shared equally; with no positive label, a uniform guess
            probabilities.update({str(label): round((1.0 - p) / len(others), 6) for label in others})
        predictions.append({"id": item["id"], "probabilities": probabilities})
    return {"model_version": MODEL_VERSION, "predictions": predictions}


class Handler(BaseHTTPRequestHandler):
    server_version = "labelwright-example-model/1"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, "text/plain", b"ok")
        else:
            self._send(404, "text/plain", b"not found; POST /predict")

    def do_POST(self) -> None:
        if self.path != "/predict":
            self._send(404, "text/plain", b"not found; POST /predict")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError(f"the body is over {MAX_BODY} bytes; send smaller batches")
            reply = predict(json.loads(self.rfile.read(length)))
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            self._send(400, "application/json", json.dumps({"error": str(e)}).encode())
            return
        self._send(200, "application/json", json.dumps(reply).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An example labelwright model server (a naive spam scorer).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to listen on (default: 9000)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request to stderr")
    args = parser.parse_args(argv)
    if args.quiet:
        Handler.log_message = lambda self, *a: None  # type: ignore[method-assign]
    with ThreadingHTTPServer((args.host, args.port), Handler) as server:
        host, port = server.server_address[:2]
        print(f"serving {MODEL_VERSION} on http://{host}:{port}/predict", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
