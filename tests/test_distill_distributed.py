"""Distributed training on CPU: 2 gloo processes under torchrun against 1 process.

One step on a fixed global batch gives the same weights under ddp (1e-5) and fsdp (1e-4) as
one process; whole runs (sft_expert: deterministic expert episodes, so the global batch is
the same at any world size) match too, only rank 0 writes, checkpoints cross between 1 and 2
processes both ways, per-rank env pools and one Ray cluster serve the ranks, and a rank that
crashes fails the whole run with its error (hard timeouts: never a hang).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from distill_support import LORA, tiny_data
from distributed_worker import run_case
from safetensors.torch import load_file

from agentdistill.distill.config import ConfigError, OptimConfig, parse_config
from agentdistill.distill.distributed import Dist, setup, shutdown
from agentdistill.distill.optimization import minibatches
from agentdistill.distill.trainer import run_train

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
LAUNCH_TIMEOUT = 150  # s; a healthy 2-process launch takes 15-40 s on 2 loaded cores


def torchrun(*args: str, timeout: float = LAUNCH_TIMEOUT) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` (fresh rendezvous port), killed after
    ``timeout`` seconds."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


# -- one optimizer step on a fixed global batch ----------------------------------------

def _case(tmp: Path, name: str, strategy: str, **over) -> dict:
    return tiny_data(tmp / name, **{"optim.lr": 1e-3, "optim.micro_batch_size": 2,
                                    "rollout.tasks_per_step": 2, "train.strategy": strategy,
                                    **over})


CASES = {
    # OPD k1, two shuffled mini-batches: a rank holds no row of one of them (a dummy pass)
    "opd": {"loss.method": "opd", "optim.mini_batches": 2},
    # GRPO on LoRA adapters, one row per micro-batch: ranks run 3 and 1 passes
    "grpo_lora": {"loss.method": "grpo", "model.lora": LORA, "optim.micro_batch_size": 1},
}


@pytest.fixture(scope="module")
def step_results(tmp_path_factory):
    """{case: (2-rank ddp, 2-rank fsdp, 1-process) results} of one step on the same batch."""
    tmp = tmp_path_factory.mktemp("step")
    cases = {f"{name}_{s}": _case(tmp, f"{name}_{s}", s, **over)
             for name, over in CASES.items() for s in ("ddp", "fsdp")}
    (tmp / "cases.json").write_text(json.dumps(cases))
    ok(torchrun(str(TESTS / "distributed_worker.py"), str(tmp / "cases.json"), str(tmp / "out.pt")))
    two = torch.load(tmp / "out.pt", weights_only=True)
    one = {name: run_case(_case(tmp, f"{name}_single", "single", **over))
           for name, over in CASES.items()}
    return {name: (two[f"{name}_ddp"], two[f"{name}_fsdp"], one[name]) for name in CASES}


def _assert_same_step(two: dict, one: dict, atol: float) -> None:
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["weights"].keys() == one["weights"].keys() and one["weights"]
    for k, w in one["weights"].items():
        torch.testing.assert_close(two["weights"][k], w, rtol=0, atol=atol, msg=k)
    for k in ("loss", "grad_norm"):  # the grad norm sees any error in the gradient's scale
        assert two["metrics"][k] == pytest.approx(one["metrics"][k], rel=1e-5, abs=1e-7), k


@pytest.mark.parametrize("case", list(CASES))
def test_ddp_step_matches_one_process(step_results, case):
    ddp, _, one = step_results[case]
    _assert_same_step(ddp, one, atol=1e-5)
    assert one["metrics"].get("updates", 1) == (2 if case == "opd" else 1)


@pytest.mark.parametrize("case", list(CASES))
def test_fsdp_step_matches_one_process(step_results, case):
    _, fsdp, one = step_results[case]
    _assert_same_step(fsdp, one, atol=1e-4)


def test_the_step_moves_the_weights(step_results, tmp_path):
    from distributed_worker import trainable_weights

    from agentdistill.distill.trainer import Trainer

    fresh = trainable_weights(Trainer(parse_config(tiny_data(tmp_path))))
    moved = step_results["opd"][2]["weights"]
    assert max(float((moved[k] - fresh[k]).abs().max()) for k in fresh) > 1e-4  # not vacuous


# -- whole runs ---------------------------------------------------------------------------

# an EMA self-teacher (it scores the evaluation's exact KL): its sync must agree across ranks
RUN = {"loss.method": "sft_expert", "steps": 1, "rollout.tasks_per_step": 2,
       "eval.seeds": [0, 1, 2], "eval.after": True, "teacher.sync": "ema", "teacher.ema_rate": 0.5}


def write_cfg(path: Path, out: Path, **over) -> Path:
    data = tiny_data(path.parent, **{**RUN, "output_dir": str(out), **over})
    path.write_text(yaml.safe_dump(data))
    return path


def weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"step_{step:06d}" / "model.safetensors"))


def teacher(run: Path, step: int) -> dict[str, torch.Tensor]:
    """The EMA teacher's weights in the checkpoint."""
    state = torch.load(run / "checkpoints" / f"step_{step:06d}" / "trainer_state.pt",
                       weights_only=True)
    assert state["teacher"]
    return state["teacher"]


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=atol, msg=k)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory):
    """1-process runs of 1 and 2 steps (in this process)."""
    tmp = tmp_path_factory.mktemp("single")
    for steps in (1, 2):
        run_train(write_cfg(tmp / f"s{steps}.yaml", tmp / f"run{steps}", steps=steps))
    return tmp / "run1", tmp / "run2"


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """``torchrun -m agentdistill train`` for 1 step (strategy auto-detected: ddp)."""
    tmp = tmp_path_factory.mktemp("ddp")
    cfg = write_cfg(tmp / "c.yaml", tmp / "run")
    proc = ok(torchrun("-m", "agentdistill", "train", str(cfg)))
    return tmp / "run", proc


def test_ddp_run_matches_one_process_and_only_rank_0_writes(ddp_run, single_runs):
    run, proc = ddp_run
    one = single_runs[0]
    assert proc.stdout.count('"steps": 1') == 1  # one summary printed
    assert_same_weights(weights(run, 1), weights(one, 1), atol=1e-5)
    assert_same_weights(teacher(run, 1), teacher(one, 1), atol=1e-5)
    two_recs, one_recs = records(run), records(one)
    assert [(h["kind"], h["step"]) for h in two_recs] == [("train", 0), ("eval", 1)]
    assert [(h["kind"], h["step"]) for h in one_recs] == [("train", 0), ("eval", 1)]
    for key in ("seeds", "episodes", "rows", "train_tokens", "success_rate"):
        assert two_recs[0][key] == one_recs[0][key], key
    for key in ("loss", "grad_norm"):
        assert two_recs[0][key] == pytest.approx(one_recs[0][key], rel=1e-5)
    ev2, ev1 = two_recs[1], one_recs[1]  # evaluation split 2 + 1 seeds and gathered
    assert ev2["episodes"] == ev1["episodes"] == 3 and ev2["kl_turns"] == ev1["kl_turns"]
    assert ev2["kl_exact"] == pytest.approx(ev1["kl_exact"], rel=1e-4)
    assert len((run / "eval" / "after.jsonl").read_text().splitlines()) == 3


def test_accelerate_launch_runs_the_same_ddp_run(ddp_run, tmp_path):
    """``accelerate launch --multi_gpu`` is torchrun underneath (on CPU too; its ``--cpu``
    mode would need MPI for 2 processes)."""
    cfg = write_cfg(tmp_path / "c.yaml", tmp_path / "run")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--main_process_port", "0",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "agentdistill", "train",
           str(cfg)]
    ok(subprocess.run(cmd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT, cwd=ROOT,
                      env=env))
    assert_same_weights(weights(tmp_path / "run", 1), weights(ddp_run[0], 1), atol=0)


def test_ddp_checkpoint_resumes_in_one_process(ddp_run, single_runs, tmp_path):
    run, _ = ddp_run
    cfg = write_cfg(tmp_path / "c.yaml", tmp_path / "run", steps=2)
    run_train(cfg, resume=run / "checkpoints" / "step_000001")
    assert_same_weights(weights(tmp_path / "run", 2), weights(single_runs[1], 2), atol=1e-5)
    assert_same_weights(teacher(tmp_path / "run", 2), teacher(single_runs[1], 2), atol=1e-5)
    assert [h["step"] for h in records(tmp_path / "run") if h["kind"] == "train"] == [0, 1]


def test_one_process_checkpoint_resumes_under_ddp_with_a_process_pool_per_rank(single_runs,
                                                                               tmp_path):
    """Each rank steps its envs in its own process pool (2 workers)."""
    cfg = write_cfg(tmp_path / "c.yaml", tmp_path / "run", steps=2,
                    **{"env.pool": {"kind": "process", "num_workers": 2}})
    ok(torchrun("-m", "agentdistill", "train", str(cfg), "--resume",
                str(single_runs[0] / "checkpoints" / "step_000001")))
    assert_same_weights(weights(tmp_path / "run", 2), weights(single_runs[1], 2), atol=1e-5)


def test_fsdp_run_matches_one_process_and_resumes(single_runs, tmp_path):
    cfg = write_cfg(tmp_path / "c.yaml", tmp_path / "run", **{"train.strategy": "fsdp"})
    ok(torchrun("-m", "agentdistill", "train", str(cfg)))
    assert_same_weights(weights(tmp_path / "run", 1), weights(single_runs[0], 1), atol=1e-4)
    assert_same_weights(teacher(tmp_path / "run", 1), teacher(single_runs[0], 1), atol=1e-4)
    # a 1-process checkpoint continued under fsdp: the optimizer state is sharded on load
    cfg2 = write_cfg(tmp_path / "c2.yaml", tmp_path / "run2", steps=2, **{"train.strategy": "fsdp"})
    ok(torchrun("-m", "agentdistill", "train", str(cfg2), "--resume",
                str(single_runs[0] / "checkpoints" / "step_000001")))
    assert_same_weights(weights(tmp_path / "run2", 2), weights(single_runs[1], 2), atol=1e-4)


def test_a_crashing_rank_fails_the_run_with_its_error(tmp_path):
    cfg = write_cfg(tmp_path / "c.yaml", tmp_path / "run", **{
        "env.id": "crash_env:CrashSokoban-v0", "env.kwargs": {"crash_rank": 1},
        "loss.method": "opd", "train.timeout_s": 60})
    t0 = time.monotonic()
    proc = torchrun("-m", "agentdistill", "train", str(cfg), timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "rank 1 crashed on purpose" in out
    assert "Root Cause" in out and "rank      : 1" in out  # torchrun names the failed rank
    assert time.monotonic() - t0 < 100


def test_one_ray_cluster_serves_every_rank(tmp_path):
    ray = pytest.importorskip("ray", reason="ray not installed: pip install 'agentdistill[ray]'")
    try:
        ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                       configure_logging=False)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"Ray could not start here: {exc}")
    try:
        address = ctx.address_info["address"]
        cfg = write_cfg(tmp_path / "c.yaml", tmp_path / "run", **{"env.pool": {
            "kind": "ray", "num_workers": 1, "num_cpus_per_worker": 0.5, "ray_address": address}})
        ok(torchrun("-m", "agentdistill", "train", str(cfg)))
        assert [h["kind"] for h in records(tmp_path / "run")] == ["train", "eval"]
        from ray._private.state import actors  # the GCS's table (no dashboard needed)

        hosts = [a for a in actors().values() if a["ActorClassName"] == "_RayHost"]
        assert len(hosts) == 2  # one env actor per rank, both in this cluster
    finally:
        ray.shutdown()


# -- plumbing without processes ------------------------------------------------------------

def test_shards_are_contiguous_and_cover_everything():
    for n in (0, 1, 5, 8):
        blocks = [Dist(rank=r, world_size=3).shard(n) for r in range(3)]
        assert [i for b in blocks for i in range(n)[b]] == list(range(n))
        assert max(b.stop - b.start for b in blocks) - min(b.stop - b.start for b in blocks) <= 1


def test_rank_mini_batches_are_the_global_parts():
    oc = OptimConfig(ppo_epochs=2, mini_batches=3)
    rows = list(range(7))
    whole = list(minibatches(rows, oc, seed=0, step=5))
    first = list(minibatches(rows[:4], oc, 0, 5, offset=0, total=7))
    second = list(minibatches(rows[4:], oc, 0, 5, offset=4, total=7))
    assert [sorted(a + b) for a, b in zip(first, second, strict=True)] == [sorted(p) for p in whole]


def test_launch_errors_are_one_line_config_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ConfigError, match="not divisible by the world size 3"):
        setup(parse_config(tiny_data(tmp_path, **{"rollout.tasks_per_step": 4})))
    with pytest.raises(ConfigError, match="every rank would train alone"):
        setup(parse_config(tiny_data(tmp_path, **{"train.strategy": "single"})))


def test_shutdown_waits_for_every_rank_before_destroying_the_group(tmp_path, monkeypatch):
    """A rank must not tear its group down while a peer still communicates (gloo's destroy
    is not collective; CI saw the early rank abort at exit): barrier first, then destroy."""
    import torch.distributed as tdist

    d = setup(parse_config(tiny_data(tmp_path, **{"train.strategy": "ddp"})))  # a group of one
    assert d.owns_group and tdist.is_initialized()
    calls: list[str] = []
    barrier, destroy = tdist.barrier, tdist.destroy_process_group
    monkeypatch.setattr(tdist, "barrier", lambda *a, **k: (calls.append("barrier"), barrier(*a, **k)))
    monkeypatch.setattr(tdist, "destroy_process_group",
                        lambda *a, **k: (calls.append("destroy"), destroy(*a, **k)))
    shutdown(d)
    assert calls == ["barrier", "destroy"] and not tdist.is_initialized()
