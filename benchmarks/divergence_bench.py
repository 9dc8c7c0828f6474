"""Peak memory and time of chunked ``token_divergence`` vs the naive all-at-once computation.

Run by hand (CPU, about 7 minutes on 1 thread of a shared 2-core machine)::

    python benchmarks/divergence_bench.py            # V = 49152, T in {1024, 4096}
    python benchmarks/divergence_bench.py --quick    # tiny sizes, smoke test, no files

Each (method, T) is measured in a fresh subprocess so allocator state cannot leak between
measurements. Inside it: build float32 student/teacher logits ``[1, T, V]`` (student
requires grad) and run a small warm-up; then

- RSS: reset the kernel's resident-set high-water mark (write ``5`` to
  ``/proc/self/clear_refs``, which resets ``VmHWM``), run forward + backward of ``out.sum()``
  once and report ``VmHWM`` minus ``VmRSS`` before the call. This includes whatever glibc
  keeps cached (freed blocks below its dynamic mmap threshold stay resident).
- allocated: one more forward + backward under ``torch.profiler`` with
  ``profile_memory=True``; the peak of its CPU ``Total Allocated`` counter (live tensor bytes
  since profiling started), the CPU analogue of ``torch.cuda.max_memory_allocated``.
- time: wall clock of forward + backward, min of 2 repetitions.

Both memory numbers are extra over the inputs and include the ``[1, T, V]`` gradient that
any method must return. Methods:

- ``naive``: plain autograd, ``p_s * (log_softmax(s) - log_softmax(t))`` summed over V, in
  float32 (what one writes without thinking about memory).
- ``ours_unchunked``: ``token_divergence(chunk_size=None)`` (analytic backward, one chunk).
- ``ours_chunkC``: ``token_divergence(chunk_size=C)`` for each C in ``--chunk``.

Writes benchmarks/results/divergence.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _worker(method: str, T: int, V: int, kind: str, chunk: int, threads: int) -> dict:
    import torch

    from agentdistill.distill.losses import token_divergence

    torch.set_num_threads(threads)

    def naive(s, t):
        ls = torch.log_softmax(s.float(), -1)
        lt = torch.log_softmax(t.float(), -1)
        if kind == "reverse_kl":
            return (ls.exp() * (ls - lt)).sum(-1)
        if kind == "forward_kl":
            return (lt.exp() * (lt - ls)).sum(-1)
        raise ValueError(kind)

    def run(s, t):
        if method == "naive":
            return naive(s, t)
        if method == "ours_unchunked":
            return token_divergence(s, t, kind, chunk_size=None)
        return token_divergence(s, t, kind, chunk_size=chunk)

    # Warm-up at a small size so one-time allocations (thread pools, kernels) are not counted.
    ws = torch.randn(1, 8, V, requires_grad=True)
    run(ws, torch.randn(1, 8, V)).sum().backward()
    del ws

    g = torch.Generator().manual_seed(0)
    s = (torch.randn(1, T, V, generator=g) * 2).requires_grad_(True)
    t = torch.randn(1, T, V, generator=g) * 2
    times = []
    peak_kb = None
    value = None
    for rep in range(2):
        s.grad = None
        base_kb = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        t0 = time.perf_counter()
        out = run(s, t)
        out.sum().backward()
        times.append(time.perf_counter() - t0)
        if rep == 0:
            peak_kb = _status_kb("VmHWM") - base_kb
            value = float(out.detach().double().sum())
        del out
    # Third repetition under torch's profiler: peak of the allocator's "Total Allocated"
    # (live tensor bytes allocated since the profiler started), independent of glibc caching.
    s.grad = None
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        run(s, t).sum().backward()
    trace = Path(f"/tmp/divergence_bench_{os.getpid()}.json")
    prof.export_chrome_trace(str(trace))
    events = json.loads(trace.read_text())["traceEvents"]
    trace.unlink()
    alloc = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    peak_alloc_mb = max([0, *alloc]) / 2**20
    input_mb = s.numel() * s.element_size() / 2**20
    return {
        "method": f"ours_chunk{chunk}" if method == "ours_chunked" else method,
        "T": T,
        "V": V,
        "kind": kind,
        "chunk_size": chunk if method == "ours_chunked" else None,
        "peak_extra_mb": peak_kb / 1024,
        "peak_extra_in_inputs": peak_kb / 1024 / input_mb,
        "peak_allocated_mb": peak_alloc_mb,
        "peak_allocated_in_inputs": peak_alloc_mb / input_mb,
        "one_input_mb": input_mb,
        "time_s": min(times),
        "times_s": times,
        "sum_of_divergences": value,
        "threads": threads,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--V", type=int, default=49152)
    ap.add_argument("--T", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--kind", default="reverse_kl", choices=["reverse_kl", "forward_kl"])
    ap.add_argument("--chunk", type=int, nargs="+", default=[16, 32, 128])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, smoke test, no files")
    ap.add_argument("--worker", nargs=6, metavar=("METHOD", "T", "V", "KIND", "CHUNK", "THR"))
    args = ap.parse_args()
    if args.worker:
        m, T, V, kind, chunk, thr = args.worker
        print(json.dumps(_worker(m, int(T), int(V), kind, int(chunk), int(thr))))
        return
    if args.quick:
        args.V, args.T, args.chunk = 4096, [256], [32]
    rows = []
    for T in args.T:
        for method, chunk in [("naive", 0), ("ours_unchunked", 0)] + [
            ("ours_chunked", c) for c in args.chunk
        ]:
            cmd = [sys.executable, __file__, "--worker", method, str(T), str(args.V)]
            cmd += [args.kind, str(chunk), str(args.threads)]
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if res.returncode != 0:
                raise SystemExit(f"worker failed: {' '.join(cmd)}\n{res.stderr}")
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"T={T:5d} {row['method']:15s} peak RSS +{row['peak_extra_mb']:7.1f} MB "
                f"({row['peak_extra_in_inputs']:.2f}x one input), allocated "
                f"+{row['peak_allocated_mb']:7.1f} MB, time {row['time_s']:.2f}s",
                flush=True,
            )
    methods = ["naive", "ours_unchunked"] + [f"ours_chunk{c}" for c in args.chunk]
    summary = []
    for T in args.T:
        by = {r["method"]: r for r in rows if r["T"] == T}
        naive = by["naive"]
        for method in methods[1:]:
            r = by[method]
            rel = abs(r["sum_of_divergences"] - naive["sum_of_divergences"])
            summary.append(
                {
                    "T": T,
                    "method": method,
                    "peak_rss_ratio_vs_naive": r["peak_extra_mb"] / naive["peak_extra_mb"],
                    "peak_allocated_ratio_vs_naive": r["peak_allocated_mb"]
                    / naive["peak_allocated_mb"],
                    "time_ratio_vs_naive": r["time_s"] / naive["time_s"],
                    "value_rel_diff_vs_naive": rel / abs(naive["sum_of_divergences"]),
                }
            )
    for srow in summary:
        print(
            f"T={srow['T']:5d} {srow['method']:15s} peak RSS ratio "
            f"{srow['peak_rss_ratio_vs_naive']:.3f}, allocated ratio "
            f"{srow['peak_allocated_ratio_vs_naive']:.3f}, time ratio "
            f"{srow['time_ratio_vs_naive']:.2f}"
        )
    if args.quick:
        return
    import torch

    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    machine = {
        "cpu": "2-core x86 CPU (AMD EPYC), no GPU",
        "cores_visible": os.cpu_count(),
        "threads_used": args.threads,
        "shared": "other engineers' jobs shared the CPU during the run, so times are noisy; "
        "memory numbers are not affected by the sharing",
        "loadavg_at_end": load,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = (
        f"python benchmarks/divergence_bench.py --T {' '.join(map(str, args.T))} "
        f"--V {args.V} --kind {args.kind} --chunk {' '.join(map(str, args.chunk))} "
        f"--threads {args.threads}"
    )
    payload = {
        "command": command,
        "kind": args.kind,
        "V": args.V,
        "measurement": {
            "peak_extra_mb": "peak extra RSS: VmHWM (reset via /proc/self/clear_refs) minus "
            "VmRSS before one forward+backward, fresh subprocess per row",
            "peak_allocated_mb": "peak of torch profiler's CPU 'Total Allocated' (live "
            "tensor bytes allocated since profiling started) over one forward+backward",
            "time_s": "wall clock of forward+backward, min of 2 repetitions",
        },
        "machine": machine,
        "rows": rows,
        "summary": summary,
    }
    (RESULTS / "divergence.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Chunked `token_divergence` vs naive all-at-once (CPU)",
        "",
        f"`{args.kind}`, V = {args.V}, batch 1, float32 logits, forward + backward of "
        f"`out.sum()`, chunk_size in {args.chunk} (`ours_chunkC` rows), "
        f"{args.threads} torch thread(s).",
        "",
        f"Command: `{command}`",
        "",
        "Memory is the extra over the two input tensors during one forward + backward, "
        "measured two ways in a fresh subprocess per row: **RSS** = VmHWM (reset through "
        "`/proc/self/clear_refs`) minus VmRSS before the call, which includes what glibc "
        "keeps cached; **allocated** = peak of the torch profiler's CPU `Total Allocated` "
        "(live tensor bytes). Both include the input-sized gradient that every method must "
        "return (1.00x one input), so the best possible ratio against a naive 5x is about 0.2. "
        "Time = min of 2 repetitions.",
        "",
        "| T | method | RSS +MB | x input | allocated +MB | x input | time (s) "
        "| RSS vs naive | allocated vs naive | time vs naive |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for T in args.T:
        by = {r["method"]: r for r in rows if r["T"] == T}
        nv = by["naive"]
        for method in methods:
            r = by[method]
            lines.append(
                f"| {T} | {method} | {r['peak_extra_mb']:.0f} | {r['peak_extra_in_inputs']:.2f} "
                f"| {r['peak_allocated_mb']:.0f} | {r['peak_allocated_in_inputs']:.2f} "
                f"| {r['time_s']:.2f} | {r['peak_extra_mb'] / nv['peak_extra_mb']:.3f} "
                f"| {r['peak_allocated_mb'] / nv['peak_allocated_mb']:.3f} "
                f"| {r['time_s'] / nv['time_s']:.2f} |"
            )
    lines += [
        "",
        f"Machine: {machine['cpu']}; {machine['shared']} (load average at the end "
        f"{' '.join(load)}). torch {machine['torch']}, Python {machine['python']}.",
        "",
    ]
    (RESULTS / "divergence.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'divergence.json'} and .md")


if __name__ == "__main__":
    main()
