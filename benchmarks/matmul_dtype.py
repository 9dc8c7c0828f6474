"""Matmul throughput per weight dtype on this CPU: is bfloat16 native here, or emulated?

    python benchmarks/matmul_dtype.py          # writes results/matmul_dtype.{json,md}

Why ``model.dtype: auto`` picks bfloat16 only where :func:`agentdistill.agents.models.native_bf16`
says so: on CPUs without AMX-BF16/AVX512-BF16 torch emulates bfloat16 matmuls.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from machine import cpu_model, git_commit

from agentdistill.agents.models import cpu_flags, native_bf16, resolve_dtype_name

OUT = Path(__file__).resolve().parent / "results"


def gflops(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matmul in ``dtype`` (one warm-up, then the mean of repeats)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 / ((time.perf_counter() - t0) / repeats) / 1e9


def main() -> None:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    load_before = os.getloadavg()
    rates = {name: gflops(dt) for name, dt in
             (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    flags = sorted(f for f in cpu_flags() if f.startswith(("avx512_bf16", "amx", "avx2", "avx512f")))
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
              "flags": flags, "gflops_1024": rates,
              "bf16_over_fp32": rates["bfloat16"] / rates["float32"],
              "native_bf16": native_bf16("cpu"), "auto_dtype": resolve_dtype_name("auto", "cpu"),
              "torch": torch.__version__, "load_before": list(load_before),
              "load_after": list(os.getloadavg()), "commit": git_commit(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    OUT.mkdir(exist_ok=True)
    (OUT / "matmul_dtype.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    md = [f"# Matmul throughput per dtype ({result['date']})", "",
          f"{result['cpu']}, {result['cores']} cores, {result['threads']} threads, flags "
          f"{' '.join(flags) or 'n/a'}; torch {torch.__version__}; 1-minute load "
          f"{load_before[0]:.2f} before, {result['load_after'][0]:.2f} after.", "",
          "| dtype | GFLOP/s (1024^3) |", "| --- | ---: |",
          *(f"| {k} | {v:.1f} |" for k, v in rates.items()), "",
          f"bfloat16 / float32: {result['bf16_over_fp32']:.3f}x; native_bf16: "
          f"{result['native_bf16']}; `dtype auto` resolves to {result['auto_dtype']}.", ""]
    (OUT / "matmul_dtype.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))


if __name__ == "__main__":
    main()
