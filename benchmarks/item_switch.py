"""Item switch on the labelling page: Enter to the next item painted, in real Chromium, with and without prefetch.

    .venv/bin/python -m benchmarks.item_switch [--items 40] [--runs 1] [--db sqlite|postgresql]

One server process (``labelwright serve``), one annotator, headless Debian Chromium (/usr/bin/chromium, driven
by Playwright) at 1280x800. For each item the annotator presses ``1`` and then Enter, after a short pause
(during which the page may prefetch, as it would while a person reads). Measured in the page:

* start: the Enter keydown event's own timestamp (``performance.timeOrigin + event.timeStamp``);
* with prefetch ("instant"): the moment after the next item's frame is painted: a MutationObserver sees the
  item region replaced, then ``requestAnimationFrame`` (the frame that shows it is being produced) and a
  message posted from inside that callback (which runs once the frame has been handed to the compositor);
* without prefetch ("reload": the prefetch request is blocked, so every Enter is a form POST, a 303 and a page
  load, as without JavaScript): the new page's First Contentful Paint.

Also printed: the server's part, as the time from sending each request to its first response byte (Chromium's
Resource Timing: ``responseStart - requestStart``), per request kind; in the instant mode these requests
are not on the path from Enter to the painted item. After each run the page is closed and the annotator's
leases are read from the database: only the item left on screen may be held.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

from sqlalchemy import text

from benchmarks.common import Database, Server, fake_items, machine_description, median, percentile
from labelwright.services import access, items, projects, users

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PASSWORD = "bench-password"
SCHEMA = {
    "name": "Item switch", "slug": "switch", "overlap": 1, "id_field": "id", "gold": {"rate": 0},
    "instructions": "Spam promotes a channel, a product or a link.",
    "fields": [{"name": "text", "type": "text", "label": "Comment"}, {"name": "author", "type": "text"}],
    "questions": [{"name": "spam", "type": "single_choice", "prompt": "Is this spam?", "options": ["spam", "ham"]}],
}
# Installed before any page script (Playwright's init script, which the page's CSP does not govern).
KEY_CLOCK = """
document.addEventListener("keydown", (e) => {
  if (e.key !== "Enter") return;
  const t0 = performance.timeOrigin + e.timeStamp;
  window.__t0 = t0;
  try { sessionStorage.setItem("lw_t0", String(t0)); } catch (err) {}
}, true);
"""
ARM_SWAP = """() => {
  const main = document.querySelector("main");
  const before = document.getElementById("item-region");
  window.__swap = new Promise((resolve) => {
    const seen = new MutationObserver(() => {
      const now = document.getElementById("item-region");
      if (!now || now === before) return;
      seen.disconnect();
      requestAnimationFrame(() => {
        const ch = new MessageChannel();
        ch.port1.onmessage = () => resolve(performance.timeOrigin + performance.now());
        ch.port2.postMessage(0);
      });
    });
    seen.observe(main, { childList: true, subtree: true });
  });
}"""
AFTER_LOAD = """async () => {
  for (let i = 0; i < 200; i++) {
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    if (fcp) return { end: performance.timeOrigin + fcp.startTime, t0: Number(sessionStorage.getItem("lw_t0")) };
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}"""


def seed(db: Database, n: int) -> None:
    store = db.store()
    try:
        owner = users.create_user(store, "olive", "owner", PASSWORD)
        users.create_user(store, "ana", "annotator", PASSWORD)
        p = projects.create_project(store, SCHEMA, created_by=owner.id)
        items.add_items(store, p, [{"id": r["id"], "text": r["text"], "author": r["author"]} for r in fake_items(n)])
        access.set_member(store, p, "ana", "annotator")
    finally:
        store.close()


def leases(db: Database) -> int:
    store = db.store()
    try:
        with store.read() as conn:
            return conn.execute(text("SELECT count(*) FROM leases")).scalar_one()
    finally:
        store.close()


def run_mode(browser, url: str, mode: str, items: int, think_ms: int) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(KEY_CLOCK)
    page = context.new_page()
    server_ms: dict[str, list[float]] = {}

    def on_response(response):
        t = response.request.timing
        if t["requestStart"] >= 0 and t["responseStart"] >= 0:
            path = response.url.split("/projects/switch/", 1)[-1].split("?")[0]
            kind = "submit" if path.endswith("/submit") else "prefetch" if path.endswith("prefetch") else \
                "label page" if path == "label" else None
            if kind:
                server_ms.setdefault(kind, []).append(t["responseStart"] - t["requestStart"])

    page.on("response", on_response)
    if mode == "reload":
        page.route("**/label/prefetch", lambda route: route.abort())
    page.goto(url + "/login?next=/projects/switch/label")
    page.fill("input[name=name]", "ana")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press("input[name=password]", "Enter")
    switches, fallbacks = [], 0
    for _ in range(items):
        page.wait_for_timeout(think_ms)
        if mode == "instant":
            deadline = time.monotonic() + 3
            while not page.evaluate("document.body.dataset.prefetched") and time.monotonic() < deadline:
                page.wait_for_timeout(10)
        ready = mode == "instant" and bool(page.evaluate("document.body.dataset.prefetched"))
        page.keyboard.press("1")
        if ready:
            page.evaluate(ARM_SWAP)
            page.keyboard.press("Enter")
            end = page.evaluate("window.__swap")
            switches.append(end - page.evaluate("window.__t0"))
        else:
            fallbacks += mode == "instant"
            with page.expect_navigation():
                page.keyboard.press("Enter")
            got = page.evaluate(AFTER_LOAD)
            switches.append(got["end"] - got["t0"])
    page.wait_for_timeout(300)
    context.close()  # the page goes away: its prefetched item must be released
    return {"switch_ms": switches, "server_ms": server_ms, "fallbacks": fallbacks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=40, help="items answered per mode and run")
    ap.add_argument("--runs", type=int, default=1, help="runs of both modes, each on a fresh database")
    ap.add_argument("--think-ms", type=int, default=400, help="pause before each answer (a person reading)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite", help="the server's database")
    ap.add_argument("--json", help="also write the raw figures to this file")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - from the test extra; only this benchmark needs it

    print(machine_description())
    try:
        print(subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.split("Model name:")[1]
              .splitlines()[0].strip())
    except (OSError, IndexError):
        pass
    results = {"instant": [], "reload": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for run in range(args.runs):
            for mode in ("instant", "reload"):
                with Database(args.db) as db:
                    seed(db, args.items + 10)
                    server = Server(db.url)
                    try:
                        r = run_mode(browser, server.url, mode, args.items, args.think_ms)
                        time.sleep(0.5)
                        r["leases_after_close"] = leases(db)
                    finally:
                        server.stop()
                results[mode].append(r)
                s = r["switch_ms"]
                srv = ", ".join(f"{k} {median(v):.1f}" for k, v in sorted(r["server_ms"].items()))
                print(f"run {run + 1} {mode:8s} Enter->next item painted: median {median(s):6.1f} ms, "
                      f"p95 {percentile(s, 0.95):6.1f} ms, max {max(s):6.1f} ms over {len(s)} items"
                      f" ({r['fallbacks']} without a prefetched item); server (request->first byte, median ms): "
                      f"{srv}; leases held after closing: {r['leases_after_close']}")
        browser.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
