"""The WebShop environment served as real HTML pages on 127.0.0.1, for a person to browse.

One ``WebShopEnv`` behind a stdlib ``http.server``: every page is rendered from the same
segments as the text observation (``pages.render``), and every link is the env action it
stands for, so what a person clicks is exactly what an agent would do. Like the original
site, navigation is plain GET links (``/search?query=...``, ``/click?name=...``);
``/reset?split=test&task=3`` starts a goal, ``/state.json`` returns the last step.

    python -m agentdistill.envs.webshop.server --port 3000 --split test --task 0

Only for local browsing: it binds 127.0.0.1 by default and serves one session.
"""

from __future__ import annotations

import argparse
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from agentdistill.envs.webshop.env import WebShopEnv

STYLE = """
body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}
#instruction-text{background:#f3f3f3;padding:.6em;border-radius:4px}
a.btn,a.product-link,a.option{display:inline-block;margin:.2em;padding:.25em .6em;
  border:1px solid #888;border-radius:4px;text-decoration:none;color:#114}
a.option.selected{background:#135;color:#fff}
.product{margin:.5em 0}.error{color:#a00}.done{color:#060;font-weight:bold}
"""


class ShopSession:
    """One env plus the last step's outcome, guarded by a lock (the server is threaded)."""

    def __init__(self, env: WebShopEnv | None = None, split: str = "test", task: Any = 0):
        self.env = env if env is not None else WebShopEnv()
        self.lock = threading.Lock()
        self.last: dict[str, Any] = {}
        self.reset(split, task)

    def reset(self, split: str, task: Any) -> None:
        with self.lock:
            obs, info = self.env.reset(seed=0, options={"split": split, "task": task})
            self.last = {"observation": obs, "reward": 0.0, "terminated": False, "info": info,
                         "steps": 0, "action": None}

    def act(self, action: str) -> None:
        with self.lock:
            obs, reward, term, trunc, info = self.env.step(action)
            self.last = {"observation": obs, "reward": reward, "terminated": term,
                         "info": info, "steps": self.last["steps"] + 1, "action": action}


def _link(cls: str, name: str, label: str) -> str:
    return (f'<a class="{cls}" href="/click?name={quote(name.lower())}">'
            f"{html.escape(label)}</a>")


def render_html(session: ShopSession) -> str:
    """The current page as HTML (same segments as the text observation)."""
    env = session.env
    segs = env.page_segments()
    body: list[str] = []
    info = session.last.get("info", {})
    if session.last.get("action") is not None:
        body.append(f'<p>Step {session.last["steps"]}: <code>'
                    f'{html.escape(str(session.last["action"]))}</code></p>')
    if info.get("action_valid") is False:
        body.append(f'<p class="error">{html.escape(str(info.get("error", "")))}</p>')
    for s in segs:
        text = html.escape(s.text)
        if s.kind == "search":
            body.append('<form action="/search" method="get"><input id="search_input" '
                        'name="query" size="60" autofocus> '
                        '<button class="btn" type="submit">Search</button></form>')
        elif s.kind == "button":
            body.append(_link("btn", s.text, s.text))
        elif s.kind == "link":
            body.append(f'<div class="product">{_link("product-link", s.text, s.text)}')
        elif s.kind == "option_group":
            body.append(f"<h4>{text}</h4>")
        elif s.kind == "option":
            cls = "option selected" if s.value == "selected" else "option"
            body.append(_link(cls, s.text, s.text))
        elif s.text == "Instruction:":
            continue
        elif s.text == env.goal.get("instruction_text"):
            body.append(f'<div id="instruction-text"><b>Instruction:</b> {text}</div>')
        else:
            body.append(f"<p>{text}</p>")
    if session.last.get("terminated"):
        body.append(f'<p class="done">Episode over: reward {session.last["reward"]:.3f}. '
                    f'<a href="/reset?split=test&task=0">Start again</a></p>')
    return ("<!doctype html><html><head><meta charset=\"utf-8\"><title>WebShop</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def make_handler(session: ShopSession) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``session``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # keep test output quiet
            return

        def _send(self, code: int, body: str, ctype: str = "text/html; charset=utf-8") -> None:
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/search":
                session.act(f"search[{q.get('query', '')}]")
            elif url.path == "/click":
                session.act(f"click[{q.get('name', '')}]")
            elif url.path == "/reset":
                try:
                    task: Any = int(q.get("task", 0))
                except ValueError:
                    task = q.get("task")
                try:
                    session.reset(q.get("split", "test"), task)
                except ValueError as err:
                    self._send(400, html.escape(str(err)))
                    return
            elif url.path == "/state.json":
                last = dict(session.last)
                self._send(200, json.dumps(last, default=str), "application/json")
                return
            elif url.path != "/":
                self._send(404, "not found")
                return
            self._send(200, render_html(session))

    return Handler


def serve(host: str = "127.0.0.1", port: int = 0, session: ShopSession | None = None
          ) -> tuple[ThreadingHTTPServer, ShopSession]:
    """Start the site in a daemon thread; returns the server (``server_address``) and session."""
    session = session if session is not None else ShopSession()
    server = ThreadingHTTPServer((host, port), make_handler(session))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, session


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Browse WebShop-v0 in a web browser.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--split", default="test")
    parser.add_argument("--task", default="0")
    args = parser.parse_args(argv)
    task: Any = int(args.task) if args.task.isdigit() else args.task
    session = ShopSession(split=args.split, task=task)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(session))
    print(f"WebShop on http://{args.host}:{server.server_address[1]}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
