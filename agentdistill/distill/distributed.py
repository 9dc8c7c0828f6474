"""Training on several processes with torch's own engines: DDP or FSDP2, gloo or NCCL.

Launch with ``torchrun`` or ``accelerate launch``: they set ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and ``MASTER_ADDR`` / ``MASTER_PORT``, which :func:`setup` reads to
initialise the default process group (``train.backend``: NCCL on CUDA, gloo on CPU).
The trainer then, on every rank:

* rolls out its contiguous block of the step's tasks (:meth:`Dist.shard`; rank order is
  task order, so the gathered batch is the 1-process batch) and scores it with its teacher;
* gathers what the batch metrics and GRPO's batch std need (:meth:`Dist.gather`), so every
  rank logs the same numbers and takes the same decisions (TCOD, skills, evals);
* normalises the loss by the *global* token count (one all-reduce per optimizer step) and
  multiplies it by the world size, since DDP and FSDP average gradients: the gradient is that
  of the token mean over the global batch, whatever the world size;
* runs its own micro-batches with gradient sync off and one last synchronised backward (a
  zero-loss pass when it holds no rows; always under FSDP, whose reduce-scatter runs once per
  forward call and a shared-prefix micro-batch calls the model several times), so ranks with
  different row counts make the same collective calls (:meth:`Engine.sync`).

:class:`Engine` wraps the student for ``train.strategy``: ``ddp`` puts
``DistributedDataParallel`` around a module whose forward is one micro-batch's loss (shared-
prefix KV passes, PEFT wrappers and several model calls run inside one DDP forward);
``fsdp`` applies FSDP2 ``fully_shard`` to every decoder layer and the root, so weights,
gradients and AdamW states are sharded at rest. The weights are gathered
(:meth:`Engine.full_weights`) for rollouts, scoring, evaluation, checkpoints and each
optimizer step's forward/backward passes, and resharded before the optimizer steps on its
shards: the model must fit one device, its training state need not.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as tdist

from agentdistill.distill.config import ConfigError, TrainConfig

__all__ = ["Dist", "Engine", "is_main_process", "launch_env", "local_device", "record_failure",
           "setup", "shutdown"]


def launch_env() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the launcher's environment (torchrun,
    accelerate launch, or anything that sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``)."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    """True on rank 0 (or without a launcher): the process that writes and prints."""
    return launch_env()[0] == 0


def local_device(name: str) -> str:
    """The torch device of this rank: ``auto`` / ``cuda`` become ``cuda:LOCAL_RANK`` under a
    multi-process launch (``cuda`` alone on one process), ``auto`` falls back to CPU."""
    _, world, local = launch_env()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and world > 1:
        return f"cuda:{local}"
    return name


@dataclass
class Dist:
    """This process's place in the run and the few collectives the trainer uses.

    Without a process group (``single``) every collective is the identity on one rank.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    strategy: str = "single"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # this Dist initialised the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one rank: collectives communicate."""
        return self.world_size > 1

    def shard(self, n: int) -> slice:
        """This rank's contiguous block of ``n`` items (earlier ranks get the remainder)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order (picklable objects)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        tdist.all_gather_object(out, obj)
        return out

    def concat(self, items: Sequence[Any]) -> list[Any]:
        """Every rank's ``items`` concatenated in rank order."""
        return [x for part in self.gather(list(items)) for x in part]

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums over ranks (float64)."""
        if not self.distributed:
            return [float(v) for v in values]
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return t.tolist()

    def sum_dict(self, values: dict[str, float]) -> dict[str, float]:
        """Key-wise sums over ranks (a key missing on a rank counts 0)."""
        if not self.distributed:
            return dict(values)
        out: dict[str, float] = {}
        for part in self.gather(dict(values)):
            for k, v in part.items():
                out[k] = out.get(k, 0.0) + v
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            tdist.barrier()

    def main_first(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on rank 0 only; a ConfigError / FileNotFoundError it raises is raised
        on every rank (no rank goes on alone into a collective)."""
        err: tuple[str, str] | None = None
        if self.is_main:
            try:
                fn()
            except (ConfigError, FileNotFoundError) as exc:
                err = (type(exc).__name__, str(exc))
        err = self.broadcast(err)
        if err is not None:
            raise (ConfigError if err[0] == "ConfigError" else FileNotFoundError)(err[1])


def _strategy(cfg: TrainConfig, world: int) -> str:
    s = cfg.train.strategy
    if s == "auto":
        return "ddp" if world > 1 else "single"
    if s == "single" and world > 1:
        raise ConfigError(f"train.strategy='single' under a launcher with WORLD_SIZE={world}: "
                          "every rank would train alone; use 'auto', 'ddp' or 'fsdp'")
    return s


def setup(cfg: TrainConfig) -> Dist:
    """The :class:`Dist` of this process; initialises the default process group for ``ddp``
    / ``fsdp`` (from the launcher's environment, or a 1-process group without one) unless it
    already exists. Checks that the world size divides ``rollout.tasks_per_step``."""
    rank, world, local = launch_env()
    strategy = _strategy(cfg, world)
    if strategy == "single":
        return Dist()
    tasks = cfg.rollout.tasks_per_step
    if tasks % world:
        raise ConfigError(f"rollout.tasks_per_step={tasks} is not divisible by the world size "
                          f"{world}: every rank rolls out the same number of tasks")
    device = torch.device(local_device(cfg.model.device))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if not tdist.is_initialized():
        backend = cfg.train.backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        timeout = datetime.timedelta(seconds=cfg.train.timeout_s)
        if world > 1 or "MASTER_ADDR" in os.environ:
            tdist.init_process_group(backend, timeout=timeout)
        else:  # ddp / fsdp asked for on one process: a group of one, no rendezvous
            tdist.init_process_group(backend, store=tdist.HashStore(), rank=0, world_size=1,
                                     timeout=timeout)
        owns = True
    if tdist.get_world_size() != world:
        raise ConfigError(f"the process group has {tdist.get_world_size()} ranks, WORLD_SIZE={world}")
    comm = device if tdist.get_backend() == "nccl" else torch.device("cpu")
    return Dist(rank, world, local, strategy, comm, owns)


def record_failure(exc: BaseException) -> None:
    """Under torchrun, write ``exc`` to the launcher's error file, so that its failure summary
    shows this rank's traceback as the root cause (nothing without a launcher)."""
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torch.distributed.elastic.multiprocessing.errors import get_error_handler

        get_error_handler().record_exception(exc)


def shutdown(d: Dist) -> None:
    """Destroy the process group if ``d`` created it (after a successful run).

    Every rank waits for the others first, and objects still holding the group (DDP's
    reducer, FSDP's state in a dropped trainer) are collected before it is destroyed: a
    rank that exits while its peer still communicates, or whose gloo threads are torn down
    only at interpreter exit, aborts with "terminate called without an active exception".
    """
    if d.owns_group and tdist.is_initialized():
        tdist.barrier()
        gc.collect()
        tdist.destroy_process_group()


class _LossModule(torch.nn.Module):
    """DDP's module: holds the student (its parameters) and runs ``fn`` as its forward."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


def _decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


class Engine:
    """The student wrapped for ``dist.strategy`` and the update's collective-sensitive parts.

    ``single`` wraps nothing. :meth:`wrap` is called once, after any checkpoint was loaded
    into the plain model (FSDP replaces the parameters by sharded DTensors).
    """

    def __init__(self, dist: Dist, model: torch.nn.Module):
        self.dist, self.model = dist, model
        self.strategy = dist.strategy
        self.ddp: Any = None
        self.fsdp: list[Any] = []  # every FSDPModule, root last
        self.wrapped = False
        self._gathered = False

    @property
    def sync_apart(self) -> bool:
        """Gradients are synchronised by a zero-loss pass of their own (one model call on every
        rank) rather than by the last micro-batch."""
        return bool(self.fsdp)

    @property
    def grad_scale(self) -> float:
        """Loss multiplier that undoes the engines' gradient averaging over ranks."""
        return float(self.dist.world_size) if self.strategy in ("ddp", "fsdp") else 1.0

    def wrap(self) -> list[torch.nn.Parameter]:
        """Wrap the model (once); returns its trainable parameters afterwards."""
        if not self.wrapped:
            self.wrapped = True
            if self.strategy == "ddp":
                from torch.nn.parallel import DistributedDataParallel

                # broadcast_buffers=False: no collective in forward (ranks differ in how many
                # forwards they run; the rotary buffers are deterministic anyway)
                self.ddp = DistributedDataParallel(_LossModule(self.model), broadcast_buffers=False)
            elif self.strategy == "fsdp":
                from torch.distributed.fsdp import FSDPModule, fully_shard

                for layer in _decoder_layers(self.model):
                    fully_shard(layer)
                fully_shard(self.model)
                self.fsdp = [m for m in self.model.modules() if isinstance(m, FSDPModule)]
        return [p for p in self.model.parameters() if p.requires_grad]

    def trainable_names(self) -> list[str]:
        return [n for n, p in self.model.named_parameters() if p.requires_grad]

    # -- the update ---------------------------------------------------------------------
    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``: a micro-batch's loss, inside DDP's forward under ``ddp``."""
        return self.ddp(fn, *args) if self.ddp is not None else fn(*args)

    @contextlib.contextmanager
    def sync(self, enabled: bool) -> Iterator[None]:
        """Backward passes inside reduce gradients over ranks only when ``enabled`` (else they
        accumulate locally, like DDP's ``no_sync``)."""
        if enabled or not self.wrapped:
            yield
        elif self.ddp is not None:
            with self.ddp.no_sync():
                yield
        elif self.fsdp:
            for m in self.fsdp:
                m.set_requires_gradient_sync(False, recurse=False)
            try:
                yield
            finally:
                for m in self.fsdp:
                    m.set_requires_gradient_sync(True, recurse=False)
        else:
            yield

    @contextlib.contextmanager
    def full_weights(self) -> Iterator[None]:
        """FSDP: the full weights on every rank inside (one all-gather on entry, none in the
        forward / backward passes inside, so ranks may run different numbers of them);
        resharded on exit. Nested uses are free; other strategies: nothing to do."""
        if not self.fsdp or self._gathered:
            yield
            return
        for m in self.fsdp:
            m.unshard()
        for m in self.fsdp:
            m.set_reshard_after_forward(False, recurse=False)
            m.set_reshard_after_backward(False, recurse=False)
        self._gathered = True
        try:
            yield
        finally:
            self._gathered = False
            for m in self.fsdp:
                m.reshard()
                m.set_reshard_after_forward(True, recurse=False)
                m.set_reshard_after_backward(True, recurse=False)

    def clip_grad_norm(self, params: Sequence[torch.nn.Parameter], max_norm: float) -> float:
        """Clip the (already reduced) gradients to ``max_norm``; returns the norm before."""
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if hasattr(norm, "full_tensor"):  # FSDP: a DTensor over the shards
            norm = norm.full_tensor()
        return float(norm)

    # -- checkpoints: the 1-process formats at every world size --------------------------
    def model_state_dict(self) -> dict[str, torch.Tensor] | None:
        """FSDP: the full state dict on rank 0 (a collective; CPU, None on other ranks).
        Other strategies: None (``save_pretrained`` reads the model itself)."""
        if not self.fsdp:
            return None
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True,
                                                                       cpu_offload=True))
        first: dict[int, str] = {}  # tied weights (lm_head = embeddings) are written once
        for name, p in self.model.named_parameters(remove_duplicate=False):
            if first.setdefault(id(p), name) != name:
                sd.pop(name, None)
        return sd if self.dist.is_main else None

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """``optimizer.state_dict()`` as one process would write it (parameter indices in
        model order); under FSDP gathered from the shards (a collective; rank 0 holds it)."""
        if not self.fsdp:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        full = get_optimizer_state_dict(self.model, optimizer, options=StateDictOptions(
            full_state_dict=True, cpu_offload=True))
        if not full:
            return {}
        index = {n: i for i, n in enumerate(self.trainable_names())}
        return {"state": {index[k]: v for k, v in full["state"].items()},
                "param_groups": [{**g, "params": [index[p] for p in g["params"]]}
                                 for g in full["param_groups"]]}

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Load a 1-process optimizer state (:meth:`optimizer_state`); FSDP shards it."""
        if not self.fsdp:
            optimizer.load_state_dict(state)
            return
        if not state.get("state"):
            return  # nothing stepped yet
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        names = self.trainable_names()
        full = {"state": {names[int(i)]: v for i, v in state["state"].items()},
                "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]}
                                 for g in state["param_groups"]]}
        set_optimizer_state_dict(self.model, optimizer, full,
                                 options=StateDictOptions(full_state_dict=True))
