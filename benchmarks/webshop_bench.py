"""WebShop-v0 performance: catalog load, BM25 index build, search latency, env steps/s.

    python benchmarks/webshop_bench.py [--scale 1 10 40] [--out benchmarks/results]

Search latency is measured on every goal's expert query (the instruction without its price
clause) and compared, in the same run, with two baselines over the same documents:
``bm25s``'s own ``retrieve(k=50)`` and a plain-Python scan that counts query tokens in
each document (what one writes without an index). Larger catalogs are the shipped
products repeated with fresh ASINs (``--scale``), to show how build time and latency grow
toward the official 1.18M-product file. Writes ``webshop.json`` and ``webshop.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from agentdistill.envs.webshop.catalog import load_catalog
from agentdistill.envs.webshop.env import WebShopEnv
from agentdistill.envs.webshop.search import SearchIndex, product_document, tokenize


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def _latency(fn, queries: list[str]) -> dict[str, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1e3)
    return {"p50_ms": _pct(times, 50), "p99_ms": _pct(times, 99), "mean_ms": statistics.fmean(times)}


def naive_scan(doc_tokens: list[list[str]]):
    """Baseline: count query-token occurrences in every document, top 50, in Python."""
    def search(query: str) -> list[int]:
        q = set(tokenize(query))
        scores = [(sum(t in q for t in toks), -i) for i, toks in enumerate(doc_tokens)]
        return [-i for s, i in sorted(scores, reverse=True)[:50] if s > 0]
    return search


def bench_search(docs: list[str], queries: list[str], repeats: int) -> dict:
    builds = []
    for _ in range(repeats):
        t = time.perf_counter()
        index = SearchIndex.build(docs)
        builds.append(time.perf_counter() - t)
    doc_tokens = [tokenize(d) for d in docs]

    def bm25s_retrieve(query: str):
        toks = [t for t in tokenize(query) if t in index.retriever.vocab_dict] or [""]
        return index.retriever.retrieve([toks], k=min(50, len(docs)), show_progress=False)

    ours = _latency(index.search, queries)
    lib = _latency(bm25s_retrieve, queries)
    naive = _latency(naive_scan(doc_tokens), queries[: max(20, len(queries) // 10)])
    return {
        "n_docs": len(docs),
        "n_queries": len(queries),
        "index_build_s_median": statistics.median(builds),
        "index_build_s_all": builds,
        "search_ours": ours,
        "search_bm25s_retrieve": lib,
        "search_naive_python_scan": naive,
        "speedup_p50_vs_naive": naive["p50_ms"] / ours["p50_ms"],
        "ratio_p50_vs_bm25s_retrieve": lib["p50_ms"] / ours["p50_ms"],
    }


def bench_env(n_goals: int) -> dict:
    env = WebShopEnv()
    steps = resets = 0
    wins = 0
    t = time.perf_counter()
    for gi in range(n_goals):
        env.reset(seed=gi, options={"task": f"webshop-{gi}"})
        resets += 1
        for _ in range(15):
            _, r, term, _, _ = env.step(env.expert_action())
            steps += 1
            if term:
                wins += int(r == 1.0)
                break
    expert_s = time.perf_counter() - t
    # random admissible actions (clicks and one fixed query): the agent-like mix
    rng = np.random.default_rng(0)
    rsteps = 0
    t = time.perf_counter()
    for gi in range(n_goals // 5):
        _, info = env.reset(seed=gi, options={"split": "train"})
        for _ in range(15):
            acts = info["admissible_actions"] or ["click[back to search]"]
            action = acts[int(rng.integers(len(acts)))].replace("<query>", "red cotton")
            _, _, term, _, info = env.step(action)
            rsteps += 1
            if term:
                break
    random_s = time.perf_counter() - t
    return {
        "expert_episodes": resets,
        "expert_success_rate": wins / resets,
        "expert_steps": steps,
        "expert_steps_per_s": steps / expert_s,
        "expert_mean_steps": steps / resets,
        "random_policy_steps": rsteps,
        "random_policy_steps_per_s": rsteps / random_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 10, 40])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    t = time.perf_counter()
    cat = load_catalog()
    load_s = time.perf_counter() - t
    queries = [g["instruction_text"].split(", and price lower than")[0].lower()
               for g in cat.goals]
    docs = [product_document(p) for p in cat.products]
    search = []
    for k in args.scale:
        scaled = [f"{d} copy{j}" if j else d for j in range(k) for d in docs]
        qs = queries if k == 1 else queries[:300]
        search.append(bench_search(scaled, qs, args.repeats if k <= 10 else 1))
        print(json.dumps({key: search[-1][key] for key in
                          ("n_docs", "index_build_s_median", "search_ours")}))
    env = bench_env(len(cat.goals))
    print(json.dumps(env))
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(),
                    "note": "2-core x86 CPU, no GPU; other jobs shared the CPU during the run"},
        "catalog": {"source": cat.source, "products": len(cat.products),
                    "goals": len(cat.goals), "load_s": load_s},
        "search": search,
        "env": env,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "webshop.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# WebShop-v0 benchmark",
        "",
        f"Machine: {result['machine']['note']} ({result['machine']['platform']}, "
        f"Python {result['machine']['python']}). Command: `python benchmarks/webshop_bench.py`.",
        "",
        f"Shipped catalog: {len(cat.products)} products, {len(cat.goals)} goals, "
        f"loaded (JSON + goals) in {load_s:.2f} s.",
        "",
        "| docs | index build (s) | ours p50 / p99 (ms) | bm25s retrieve p50 (ms) | "
        "naive scan p50 (ms) | speed-up vs naive (p50) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in search:
        lines.append(
            f"| {s['n_docs']} | {s['index_build_s_median']:.2f} | "
            f"{s['search_ours']['p50_ms']:.2f} / {s['search_ours']['p99_ms']:.2f} | "
            f"{s['search_bm25s_retrieve']['p50_ms']:.2f} | "
            f"{s['search_naive_python_scan']['p50_ms']:.1f} | "
            f"{s['speedup_p50_vs_naive']:.0f}x |")
    lines += [
        "",
        "Larger catalogs repeat the shipped products (text suffixed, so documents differ).",
        "",
        f"Env: expert on all {env['expert_episodes']} goals: success "
        f"{env['expert_success_rate']:.3f}, {env['expert_mean_steps']:.2f} steps/episode, "
        f"{env['expert_steps_per_s']:.0f} steps/s (resets included); random admissible "
        f"actions: {env['random_policy_steps_per_s']:.0f} steps/s.",
        "",
    ]
    (args.out / "webshop.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
