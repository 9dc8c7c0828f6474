"""WebShop HTML site: driven over HTTP, and once through a real headless browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from urllib.parse import quote

import pytest

pytest.importorskip("bm25s", reason="WebShop search needs bm25s (pip install agentdistill[webshop])")

from agentdistill.envs.webshop.server import ShopSession, serve  # noqa: E402

BROWSERS = ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome")


@pytest.fixture()
def site():
    server, session = serve(session=ShopSession(split="test", task=0))
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}", session
    server.shutdown()
    server.server_close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return resp.read().decode("utf-8")


def test_http_episode_reaches_reward_one(site):
    base, session = site
    page = _get(base + "/")
    goal = session.env.goal
    assert 'id="search_input"' in page and goal["instruction_text"] in page
    # follow the expert, but through the site's own URLs
    for _ in range(15):
        action = session.env.expert_action()
        verb, arg = action.split("[", 1)
        arg = arg[:-1]
        if verb == "search":
            page = _get(f"{base}/search?query={quote(arg)}")
        else:
            assert f'href="/click?name={quote(arg)}"' in page, arg  # the link is on the page
            page = _get(f"{base}/click?name={quote(arg)}")
        if session.last["terminated"]:
            break
    state = json.loads(_get(base + "/state.json"))
    assert state["terminated"] and state["reward"] == 1.0
    assert "Episode over: reward 1.000" in page


def test_http_bad_click_shows_error_and_keeps_page(site):
    base, session = site
    before = session.env.page_segments()
    page = _get(base + "/click?name=nonsense")
    assert 'class="error"' in page and session.env.page_segments() == before
    page = _get(base + "/reset?split=valid_seen&task=3")
    assert session.last["info"]["task_id"] == "webshop-503"


def test_headless_browser_renders_search_results(site):
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless Chromium (Debian: apt-get install chromium-headless-shell)")
    base, session = site
    query = session.env.goal["instruction_text"].split(", and price")[0]
    url = f"{base}/search?query={quote(query)}"
    out = subprocess.run(
        [shutil.which(browser), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    dom = out.stdout
    assert "Page 1 (Total results:" in dom
    assert dom.count('class="product-link"') == 10
    assert session.last["info"]["page"] == "results"
    target = session.env.goal["asin"]
    assert any(session.env.catalog.products[i]["asin"] == target
               for i in session.env._state.results)
