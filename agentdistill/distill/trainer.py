"""The training loop: rollout -> teacher scoring -> batch -> update -> eval -> checkpoint.

One loop serves every method (``loss.method``, see :mod:`agentdistill.distill.config`);
the pieces live in their own modules:

* :mod:`.batch`: trainable rows, GRPO advantages, SOD weights, batch metrics;
* :mod:`.objectives`: the per-method loss of one micro-batch (a table, not an if-chain);
* :mod:`.evaluation`: held-out evaluation and the one KL aggregation;
* :mod:`.checkpoint`: trainer states on disk, RNG capture; :mod:`.run_log`: JSONL,
  TensorBoard, plots, timers; :mod:`.policy`: the sampler and the hinted teacher policy.

Methods differ only through hooks: rollout options per step (:meth:`Trainer.rollout_options`:
TCOD f2b / adaptive truncate training rollouts to ``depth(step)`` student turns (logged as
``depth``); b2f replays ``replay_length(step, L)`` expert actions first, which carry no loss,
and then lets the student play to the env's turn limit (logged: ``replay_turns_mean``, the
mean replayed turns per episode; there is no depth cap), the batch weights
(SOD), the objective, and the teacher's context builder (plain / expert hint / skills) and
sync policy.

log pi_theta is recomputed on ``prompt_ids + response_ids`` per turn in micro-batches; the
loss is the token mean over the whole step's batch (micro-batch losses are scaled by their
token share). pi_old is the sampler's raw log-prob (``Turn.response_logprobs``,
temperature 1, see backends/hf.py) or, with ``optim.old_logprobs: recompute``, a no-grad
pass before the update; either is the sampling distribution only at ``rollout.temperature 1,
top_p 1``, which the config therefore requires for the on-policy methods.

Determinism and resume: the training seeds of step ``s`` are drawn from
``numpy.random.default_rng([seed, s])`` and generation is seeded with ``(seed, s)``, so the
data order is a function of the step; a checkpoint also stores the optimizer, the
Python/NumPy/torch RNG states, teacher weights (EMA/copy), the TCOD state, the skill bank
and the metric history (tensors and plain values only: loaded with ``weights_only=True``),
and resuming continues with the same next step.

Several processes (``torchrun`` / ``accelerate launch``, :mod:`.distributed`): each rank rolls
out its block of the step's tasks and trains on its rows under DDP or FSDP; the loss is the
token mean over every rank's rows, metrics and evaluations are gathered, rank 0 writes the
run directory, and checkpoints are in the 1-process format (resume at any world size that
divides ``rollout.tasks_per_step``).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agentdistill.agents.rollout import expert_solution_length, registered_max_turns
from agentdistill.agents.trajectory import Episode, Turn
from agentdistill.distill.batch import (
    Batch,
    Row,
    attach_teacher_prompts,
    build_batch,
    build_rows,
    chunks,
    episode_rewards,
    pad_values,
    step_seeds,
    token_mask,
)
from agentdistill.distill.checkpoint import (
    STATE_FILE,
    Checkpoints,
    plain,
    rng_state,
    set_rng_state,
    trainable_state,
)
from agentdistill.distill.config import OFFPOLICY_METHODS, ConfigError, TrainConfig, load_config
from agentdistill.distill.config_yaml import config_yaml
from agentdistill.distill.curriculum import TCODSchedule
from agentdistill.distill.distributed import (
    Engine,
    is_main_process,
    local_device,
    record_failure,
    setup,
    shutdown,
)
from agentdistill.distill.evaluation import Evaluator, action_stats, kl_stats
from agentdistill.distill.objectives import OBJECTIVES, micro_batch, regularize
from agentdistill.distill.optimization import (
    ReferencePolicy,
    checkpointing_active,
    enable_checkpointing,
    lr_factor,
    minibatches,
)
from agentdistill.distill.policy import HintedPolicy, make_policy, mix_seed
from agentdistill.distill.run_log import RunLog, StepTimer
from agentdistill.distill.teacher import (
    SkillsContext,
    Teacher,
    TeacherSync,
    make_context,
    response_logprobs,
)

__all__ = [  # names other code imports from here
    "STATE_FILE", "Batch", "HintedPolicy", "Row", "Trainer", "action_stats", "build_rows",
    "build_student", "episode_rewards", "kl_stats", "main", "pad_values", "run_train",
    "step_seeds", "token_mask", "trainable_state",
]


# --------------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------------


def build_student(cfg: TrainConfig) -> tuple[torch.nn.Module, Any]:
    """Load the student (HF name/path, 'smollm2', or a tiny random model) and apply LoRA."""
    from agentdistill.agents import models

    if cfg.model.tiny_random_seed is not None:
        model, tok = models.tiny_random_model(seed=cfg.model.tiny_random_seed)
        model.to(_device(cfg))
    else:
        model, tok = models.load_model(cfg.model.name, dtype=cfg.model.dtype, device=_device(cfg))
    if cfg.model.lora is not None:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError("LoRA needs peft: pip install 'agentdistill[train]'") from exc
        lc = cfg.model.lora
        n_layers = int(model.config.num_hidden_layers)
        if lc.top_layers is not None and lc.top_layers > n_layers:
            raise ConfigError(f"model.lora.top_layers={lc.top_layers} but the model has {n_layers} "
                              f"decoder blocks; use at most {n_layers} (or null for all)")
        layers = None if lc.top_layers is None else list(range(n_layers - lc.top_layers, n_layers))
        model = get_peft_model(model, LoraConfig(
            r=lc.r, lora_alpha=lc.alpha, lora_dropout=lc.dropout,
            target_modules=list(lc.target_modules), layers_to_transform=layers,
            task_type="CAUSAL_LM",
        ))
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    model.eval()  # no dropout in rollouts or in the loss pass (LoRA dropout defaults to 0)
    return model, tok


def _device(cfg: TrainConfig) -> str:
    return local_device(cfg.model.device)  # cuda:LOCAL_RANK under a multi-process launch


# --------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------


class Trainer:
    """Runs a :class:`TrainConfig` (see module docstring)."""

    def __init__(self, cfg: TrainConfig, *, model: Any = None, tokenizer: Any = None,
                 skills_fn: Any = None):
        self.cfg = cfg
        self.dist = setup(cfg)  # rank, world size; the process group under ddp / fsdp
        self.out = Path(cfg.output_dir)
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        _seed_everything(cfg.seed)
        if model is None:
            model, tokenizer = build_student(cfg)
        self.model, self.tokenizer = model, tokenizer
        if cfg.model.gradient_checkpointing:
            enable_checkpointing(self.model)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                          else tokenizer.eos_token_id)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = self._new_optimizer()
        self.engine = Engine(self.dist, self.model)  # wraps the model in prepare()
        self._pool: Any = None
        self.env_id = cfg.env.id
        self.max_turns = cfg.env.max_turns or registered_max_turns(cfg.env.id)
        self.skill_bank = None
        self.skills_fn = skills_fn
        self.teacher: Teacher | None = self._build_teacher() if cfg.uses_teacher else None
        self.reference: ReferencePolicy | None = None
        if cfg.loss.kl_ref_coef > 0:  # the initial policy, before any update or checkpoint load
            t = self.teacher
            share = t.model if t is not None and t.is_self and cfg.teacher.sync == "frozen" else None
            self.reference = ReferencePolicy(self.model, share=share)
        m = cfg.loss.method
        self.schedule: TCODSchedule | None = None
        if m.startswith("tcod_"):
            self.schedule = TCODSchedule(
                m.removeprefix("tcod_"), cfg.curriculum.K, cfg.curriculum.horizon or self.max_turns,
                window=cfg.curriculum.window,
            )
        self.step = 0
        self.run_log = RunLog(self.out, cfg.log, files=self.dist.is_main)
        self.evaluator = Evaluator(cfg, self.model, self.tokenizer, self.teacher, self.run_log,
                                   self.max_turns, self.pad_id, self.engine, self.env_args)
        self.checkpoints = Checkpoints(
            self.out / "checkpoints", self.model, self.tokenizer, cfg.checkpoint_every,
            base_name=cfg.model.name if cfg.model.tiny_random_seed is None else None,
        )

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every metrics record of the run so far (train steps and evals)."""
        return self.run_log.history

    # -- the loop ----------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.steps`` (from the current step); returns a summary."""
        cfg = self.cfg
        self.prepare()
        recompute = self.recompute_old_logprobs if cfg.optim.old_logprobs == "recompute" else None
        gather = self.dist.gather if self.dist.distributed else None
        if self.dist.is_main:
            (self.out / "config.yaml").write_text(config_yaml(cfg), encoding="utf-8")
        self.evaluator.before(self.step)
        self.run_log.start_progress(cfg.steps, self.step, f"train {cfg.loss.method}")
        for step in range(self.step, cfg.steps):
            timer = StepTimer()
            with self.engine.full_weights():  # FSDP: gathered for rollout and scoring
                with timer("rollout_s"):
                    episodes = self.collect(step)  # this rank's tasks
                with timer("teacher_s"):
                    self.score(episodes)
                batch = build_batch(episodes, cfg, step, recompute, gather)
                if cfg.teacher_logits_in_step:
                    attach_teacher_prompts(batch.rows, episodes, self.teacher)
            with timer("update_s"):
                metrics = self.update(batch)
            self.after_step(step, episodes, metrics)
            self.log(metrics, timer)
            self.evaluator.maybe_run(self.step)
            if self.checkpoints.due(self.step):
                self.save_checkpoint()
        return self.finish()

    def prepare(self) -> None:
        """Wrap the student for ``train.strategy`` (once; after any checkpoint load). FSDP
        shards the parameters: the optimizer is rebuilt on the shards with its state."""
        if self.engine.wrapped:
            return
        if self.skill_bank is not None and self.dist.distributed:  # rank 0's bank file
            from agentdistill.distill.skills import SkillBank

            self.skill_bank = SkillBank.from_state(self.dist.broadcast(self.skill_bank.state_dict()))
        state = self.optimizer.state_dict()
        params = self.engine.wrap()
        if self.engine.fsdp:
            self.params = params
            self.optimizer = self._new_optimizer()
            self.engine.load_optimizer_state(self.optimizer, state)

    def finish(self) -> dict[str, Any]:
        """The ``after`` eval, the final checkpoint, plots, and ``summary.json``."""
        self.evaluator.after(self.step)
        self.save_checkpoint()
        self.run_log.close()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        summary = {
            "steps": self.step,
            # what model.dtype resolved to here ('auto' depends on the machine)
            "weight_dtype": str(self.model.get_input_embeddings().weight.dtype).removeprefix("torch."),
            "before": next((h for h in self.history if h.get("tag") == "before"), None),
            "after": next((h for h in reversed(self.history) if h.get("tag") == "after"), None),
        }
        if self.dist.is_main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float),
                                                   encoding="utf-8")
        self.dist.barrier()
        return summary

    # -- phases of one step ------------------------------------------------------------
    def collect(self, step: int) -> list[Episode]:
        """Training episodes of ``step`` (no grad, seeded by ``(seed, step)``): the student's
        rollouts, or off-policy ones for sft_expert / seqkd, or a ``loss.lmbda`` mix of both
        (the first ``round(lmbda * N)`` of the step's ``N = tasks * group_size`` episode slots
        are the student's)."""
        from agentdistill.agents.rollout import rollout

        cfg, rc = self.cfg, self.cfg.rollout
        seeds = self.train_seeds(step)
        mine = self.dist.shard(len(seeds))  # several ranks: this rank's block of tasks
        # the sampler seed of the block: (seed, step) for the first, as with one process
        seed = mix_seed(cfg.seed, step) if mine.start == 0 else mix_seed(cfg.seed, step, mine.start)
        source = cfg.offpolicy_source
        policy = make_policy(cfg, self.model, self.tokenizer, rc.temperature, rc.max_new_tokens,
                             seed=seed)
        common = dict(options=dict(cfg.env.train_options), progress=False, **self.env_args(),
                      **self.rollout_options(step))
        self.model.eval()
        with torch.no_grad():
            if source is None:
                return rollout(policy, self.env_id, seeds[mine], group_size=rc.group_size, **common)
            if cfg.loss.method in OFFPOLICY_METHODS:  # the expert is deterministic: once per seed
                group = 1 if source == "expert" else rc.group_size
                return self._offpolicy(source, policy, seeds[mine], group, seed, common)
            slots = [s for s in seeds for _ in range(rc.group_size)]
            n = round(cfg.loss.lmbda * len(slots))  # the first n slots of the step are the student's
            lo, hi = mine.start * rc.group_size, mine.stop * rc.group_size
            ours = slots[lo:max(lo, min(hi, n))]
            student = rollout(policy, self.env_id, ours, **common) if ours else []
            return student + self._offpolicy(source, policy, slots[max(lo, n):hi], 1, seed, common)

    def env_args(self) -> dict[str, Any]:
        """How rollouts make their envs: this rank's pool, or ``gym.make`` arguments."""
        pool = self.env_pool()
        if pool is not None:  # the pool's envs were made with the turn limit and kwargs
            return {"env_pool": pool}
        return {"max_turns": self.max_turns, "env_kwargs": dict(self.cfg.env.kwargs)}

    def env_pool(self) -> Any:
        """This rank's env pool (``env.pool``; made on first use), or None."""
        pc = self.cfg.env.pool
        if pc is None or self._pool is not None:
            return self._pool
        from agentdistill.envs.pool import make_env_pool

        rc = self.cfg.rollout
        n = pc.num_envs or rc.tasks_per_step // self.dist.world_size * rc.group_size
        kw: dict[str, Any] = {"step_timeout": pc.step_timeout}
        if pc.kind == "ray":
            kw["num_cpus_per_worker"] = pc.num_cpus_per_worker
            kw["ray_init_kwargs"] = ({"address": pc.ray_address} if pc.ray_address
                                     else {"include_dashboard": False})
        self._pool = make_env_pool(self.env_id, n, kind=pc.kind, num_workers=pc.num_workers,
                                   env_kwargs={**self.cfg.env.kwargs,
                                               "max_episode_steps": self.max_turns}, **kw)
        return self._pool

    def _offpolicy(self, source: str, student: Any, seeds: list[int], group_size: int, seed: int,
                   common: dict[str, Any]) -> list[Episode]:
        """Expert or teacher episodes on ``seeds`` in the student's prompt format."""
        from agentdistill.agents.expert_data import offpolicy_episodes

        if not seeds:
            return []
        if source == "expert":
            return offpolicy_episodes("expert", student, self.env_id, seeds, group_size=group_size,
                                      **common)
        assert self.teacher is not None
        rc = self.cfg.rollout
        hinted = self.cfg.teacher.context.startswith("expert")
        with self.teacher.scoring_model() as teacher_model:
            teacher = make_policy(self.cfg, teacher_model, self.tokenizer, rc.temperature,
                                  rc.max_new_tokens, seed=seed, hinted=hinted)
            return offpolicy_episodes("teacher", student, self.env_id, seeds, teacher=teacher,
                                      group_size=group_size, **common)

    def score(self, episodes: Sequence[Episode]) -> None:
        """Teacher log-probs on every trainable turn (in place; nothing without a teacher, and
        nothing for sft_expert / seqkd, whose loss does not read them)."""
        if self.teacher is not None and self.cfg.scores_rollouts:
            self.teacher.score_episodes(episodes)

    def update(self, batch: Batch) -> dict[str, Any]:
        """One optimizer step on ``batch``; returns the batch metrics plus the loss metrics."""
        rows = batch.metrics.get("rows", len(batch.rows))  # every rank's
        loss_metrics = self.optimize(batch.rows) if rows else {"loss": math.nan}
        return {**batch.metrics, **loss_metrics}

    def after_step(self, step: int, episodes: Sequence[Episode], metrics: dict[str, Any]) -> None:
        """Advance to ``step + 1``: teacher sync, TCOD schedule, skill bank (``episodes``:
        this rank's; what they decide is taken from every rank's)."""
        self.step = step + 1
        if self.teacher is not None:
            with self.engine.full_weights():
                metrics["teacher_synced"] = bool(self.teacher.after_step(self.model, self.step))
        if self.schedule is not None:
            if self.schedule.mode == "b2f":  # no depth cap: the student plays on after the replay
                replayed = self.dist.concat([sum(t.is_replay for t in e.turns) for e in episodes])
                metrics["replay_turns_mean"] = sum(replayed) / max(1, len(replayed))
            else:
                metrics["depth"] = self.schedule.depth(step)
            self.schedule.update(step, metrics.get("traj_kl_mean", math.nan), metrics.get("traj_kl_std", math.nan))
        if self.skill_bank is not None:
            self._update_skills(self.dist.concat(episodes))

    def log(self, metrics: dict[str, Any], timer: StepTimer) -> None:
        """Add the step's timings to ``metrics`` and record them."""
        metrics.update(timer.metrics(metrics["gen_tokens"], metrics["train_tokens"]))
        self.run_log.write(metrics)
        self.run_log.tick(metrics)

    # -- the update --------------------------------------------------------------------
    def micro_loss(self, rows: Sequence[Row] | None) -> tuple[torch.Tensor, dict[str, float], torch.Tensor]:
        """Loss of one micro-batch (token mean over its mask), its metrics and its mask.
        ``rows=None``: a zero loss through every weight (a rank without rows still joins the
        gradient sync)."""
        if rows is None:
            dev = next(self.model.parameters()).device
            ids = torch.full((1, 2), self.pad_id, dtype=torch.long, device=dev)
            zero = self.model(input_ids=ids, use_cache=False).logits.sum() * 0.0
            return zero, {}, torch.zeros((1, 0), dtype=torch.bool)
        lc = self.cfg.loss
        ckpt = self.cfg.model.gradient_checkpointing
        with checkpointing_active(self.model, ckpt):
            mb = micro_batch(self.model, rows, self.pad_id, lc, self.teacher, checkpointing=ckpt)
            loss, metrics = OBJECTIVES[lc.method](mb, lc)
            loss, metrics = regularize(mb, lc, loss, metrics)
        return loss, metrics, mb.mask

    def optimize(self, rows: list[Row]) -> dict[str, float]:
        """``optim.ppo_epochs`` x ``optim.mini_batches`` optimizer steps on ``rows`` at the
        scheduled LR; returns the metrics averaged over those updates."""
        self.prepare()
        oc = self.cfg.optim
        lr = oc.lr * lr_factor(oc, self.step, self.cfg.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.reference is not None:
            with self.engine.full_weights():
                self.reference.score(rows, self.pad_id, oc.micro_batch_size)
        counts = self.dist.gather(len(rows))  # this rank's rows are global rows offset...
        offset = sum(counts[: self.dist.rank])
        updates = []
        for part in minibatches(rows, oc, self.cfg.seed, self.step, offset, sum(counts)):
            with self.engine.full_weights():  # FSDP: gathered for the passes, resharded to step
                m = self.accumulate(part)
            if oc.grad_clip is not None:
                m["grad_norm"] = self.engine.clip_grad_norm(self.params, oc.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            updates.append(m)
        if len(updates) == 1:
            return {**updates[0], "lr": lr}
        keys = dict.fromkeys(k for m in updates for k in m)
        out = {k: float(sum(m.get(k, 0.0) for m in updates) / len(updates)) for k in keys}
        out.update(updates=len(updates), clip_frac_last=updates[-1].get("clip_frac", math.nan), lr=lr)
        return out

    def accumulate(self, rows: Sequence[Row]) -> dict[str, float]:
        """Gradients of the token-mean loss over ``rows`` (micro-batches weighted by their
        token share) into ``.grad``; returns the token-weighted metrics.

        Several ranks: ``rows`` are this rank's part; the token count is every rank's, the
        loss is scaled by the world size (DDP / FSDP average), and only the last pass
        synchronises the gradients (a zero-loss one without rows, and always under FSDP).
        """
        self.model.eval()
        self.optimizer.zero_grad(set_to_none=True)
        (total,) = self.dist.sum(sum(len(r.response_ids) for r in rows))
        parts: list[Sequence[Row] | None] = list(chunks(rows, self.cfg.optim.micro_batch_size))
        if not parts or self.engine.sync_apart:
            parts.append(None)
        agg: dict[str, float] = defaultdict(float)
        for i, mb in enumerate(parts):
            with self.engine.sync(i == len(parts) - 1):
                loss, m, mask = self.engine.forward(self.micro_loss, mb)
                share = float(mask.sum()) / total
                (loss * (share * self.engine.grad_scale)).backward()
            for k, v in m.items():
                if isinstance(v, (int, float)) and k != "num_tokens":
                    agg[k] += share * float(v)
        return self.dist.sum_dict(agg)

    @torch.no_grad()
    def recompute_old_logprobs(self, rows: list[Row]) -> None:
        """Replace the rows' sampler log-probs with the current policy's (no grad)."""
        for mb in chunks(rows, self.cfg.optim.micro_batch_size):
            out = response_logprobs(self.model, [r.prompt_ids for r in mb],
                                    [r.response_ids for r in mb], pad_id=self.pad_id)
            for i, r in enumerate(mb):
                r.old_logprobs = out.logprobs[i, : len(r.response_ids)].cpu().tolist()

    # -- construction ------------------------------------------------------------------
    def _new_optimizer(self) -> torch.optim.Optimizer:
        oc = self.cfg.optim
        return torch.optim.AdamW(self.params, lr=oc.lr, weight_decay=oc.weight_decay,
                                 betas=tuple(oc.betas))

    def _build_teacher(self) -> Teacher:
        tc = self.cfg.teacher
        skills_fn = None
        if tc.context == "skills":
            skills_fn = self.skills_fn or self._bank_skills_fn()
        context = make_context(tc.context, skills_fn=skills_fn, hint_placement=tc.hint_placement)
        if isinstance(context, SkillsContext) and self.skills_fn is None:
            context.header = ""  # SkillBank.context_for writes its own header
        if tc.source == "model":
            from agentdistill.agents import models

            if tc.tiny_random_seed is not None:  # a fixed random teacher (tests, benchmarks)
                tmodel, ttok = models.tiny_random_model(seed=tc.tiny_random_seed, tokenizer=self.tokenizer)
                tmodel.to(_device(self.cfg))
            else:
                tmodel, ttok = models.load_model(tc.model, dtype=self.cfg.model.dtype,
                                                 device=_device(self.cfg))
            return Teacher(ttok, model=tmodel, student_tokenizer=self.tokenizer, context=context,
                           top_k=tc.top_k, batch_size=tc.batch_size)
        sync = TeacherSync(tc.sync, rate=tc.ema_rate, every=tc.copy_every)
        return Teacher(self.tokenizer, student=self.model, context=context, sync=sync,
                       top_k=tc.top_k, batch_size=tc.batch_size)

    def _bank_skills_fn(self) -> Any:
        from agentdistill.distill.skills import SkillBank

        sc = self.cfg.skills
        path = Path(sc.bank_path) if sc.bank_path else self.out / "skills.json"
        self.skill_bank = SkillBank.load(path) if path.is_file() else SkillBank(max_per_task_type=sc.max_skills)
        self._bank_path = path
        k = sc.top_k

        def fn(turn: Turn, episode: Episode | None) -> str:
            if episode is None:
                return ""
            return self.skill_bank.context_for(_task_type(episode), episode.task, k)

        return fn

    def _add_skills(self, episodes: Sequence[Episode]) -> None:
        from agentdistill.distill.skills import SkillSummarizer, extractive_skill

        finished = [e for e in episodes if e.turns]
        if self.cfg.skills.summarizer == "student":
            from agentdistill.agents.backends.hf import HFBackend

            skills = SkillSummarizer(HFBackend(self.model, self.tokenizer)).summarize(finished)
        else:
            skills = [extractive_skill(e, _task_type(e)) for e in finished]
        for s in skills:
            self.skill_bank.add(s)
        self.skill_bank.save(self._bank_path)

    def _update_skills(self, episodes: Sequence[Episode]) -> None:
        """Add the skills of every rank's ``episodes`` to the bank: rank 0 writes them, the
        other ranks receive its bank (one bank, whatever the summariser samples)."""
        with self.engine.full_weights():
            if self.dist.is_main:
                self._add_skills(episodes)
        if self.dist.distributed:
            from agentdistill.distill.skills import SkillBank

            self.skill_bank = SkillBank.from_state(self.dist.broadcast(self.skill_bank.state_dict()))

    # -- hooks -------------------------------------------------------------------------
    def rollout_options(self, step: int) -> dict[str, Any]:
        """Extra rollout keyword arguments at ``step`` (TCOD depth / expert replay)."""
        kw: dict[str, Any] = {}
        if self.schedule is not None:
            if self.schedule.mode == "b2f":
                sched, s = self.schedule, step
                # replayed steps count against the env's turn limit: leave the student >= 1
                cap = self.max_turns - 1
                kw["replay_expert_turns"] = lambda seed: min(
                    cap, sched.replay_length(s, self.expert_length(seed)))
            else:
                kw["max_student_turns"] = self.schedule.depth(step)
        turn_cap = self.cfg.rollout.max_student_turns
        if turn_cap is not None:
            kw["max_student_turns"] = min(turn_cap, kw.get("max_student_turns", turn_cap))
        if self.teacher is not None and self.cfg.teacher.context.startswith("expert"):
            kw["record_expert"] = True
        return kw

    def expert_length(self, seed: int | None) -> int:
        """Length of the expert's solution from the reset state of ``seed`` (cached)."""
        cache = self.__dict__.setdefault("_expert_lengths", {})
        if seed not in cache:
            cache[seed] = expert_solution_length(
                self.env_id, seed, dict(self.cfg.env.train_options), dict(self.cfg.env.kwargs),
                self.max_turns,
            )
        return cache[seed]

    def train_seeds(self, step: int) -> list[int]:
        """The task seeds of ``step``: a pure function of (config seed, step)."""
        return step_seeds(self.cfg, step)

    def evaluate(self, tag: str) -> dict[str, Any]:
        """One held-out evaluation at the current step (not logged; see :class:`Evaluator`)."""
        return self.evaluator.run(tag, self.step)

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the weights (saved in HF format by :class:`Checkpoints`) that a
        resumed run needs to continue bit-identically."""
        return {
            "step": self.step,
            "optimizer": self.engine.optimizer_state(self.optimizer),  # FSDP: gathered
            "rng": rng_state(),
            "teacher": self.teacher.state_dict() if self.teacher is not None else {},
            "curriculum": self.schedule.state_dict() if self.schedule is not None else None,
            "skills": self.skill_bank.state_dict() if self.skill_bank is not None else None,
            "history": plain(self.history),
            "config": self.cfg.model_dump(mode="json"),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the metric history is rewritten to ``metrics.jsonl``);
        the weights come separately (:meth:`load_checkpoint`)."""
        self.engine.load_optimizer_state(self.optimizer, state["optimizer"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state.get("teacher") or {})
        if self.schedule is not None and state.get("curriculum"):
            self.schedule.load_state_dict(state["curriculum"])
        if self.skill_bank is not None and state.get("skills") is not None:
            from agentdistill.distill.skills import SkillBank

            self.skill_bank = SkillBank.from_state(state["skills"])  # the bank as of that step
            if self.dist.is_main:
                self.skill_bank.save(self._bank_path)
        set_rng_state(state["rng"])
        self.step = int(state["step"])
        self.run_log.restore(state["history"])

    def save_checkpoint(self) -> Path:
        """Save the current state under ``checkpoints/step_N`` (every rank calls it: FSDP
        gathers the weights and optimizer state; rank 0 writes)."""
        state = self.state_dict()
        weights = self.engine.model_state_dict()
        path = self.checkpoints.step_dir(self.step)
        if self.dist.is_main:
            self.checkpoints.save(state, self.step, weights)
        self.dist.barrier()
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Resume from a checkpoint dir, a run dir (its latest) or ``.../latest``: weights
        into the model, then the trainer state (every rank reads it; under FSDP before
        training starts, since the weights are then sharded)."""
        if self.engine.fsdp:
            raise RuntimeError("under train.strategy 'fsdp' load the checkpoint before fit()")
        self.load_state_dict(self.checkpoints.load(path))


# --------------------------------------------------------------------------------------
# helpers and entry points
# --------------------------------------------------------------------------------------


def _task_type(episode: Episode) -> str:
    return str(episode.metadata.get("task_type") or episode.env_id)


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


RUN_MARKERS = ("config.yaml", "metrics.jsonl", "checkpoints", "summary.json")


def prepare_output_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start a new run in a non-empty ``out`` (it would append to the old run's
    records) unless resuming; ``overwrite`` deletes a previous run's directory first."""
    if resume or not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"output_dir {out} is not empty (an earlier run?): pass --resume {out} "
                          "to continue it, --overwrite to replace it, or another output_dir")
    if not any((out / m).exists() for m in RUN_MARKERS):
        raise ConfigError(f"output_dir {out} is not empty and does not look like a training run "
                          f"(none of {', '.join(RUN_MARKERS)}): not deleting it; pick another output_dir")
    import shutil

    shutil.rmtree(out)


def run_train(config: str | Path | TrainConfig, resume: str | Path | None = None,
              overrides: dict[str, Any] | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Load a config, build a :class:`Trainer`, optionally resume, and train.

    A new run needs an empty (or missing) ``output_dir``; ``overwrite`` replaces an earlier
    run there (see :func:`prepare_output_dir`).
    """
    cfg = config if isinstance(config, TrainConfig) else load_config(config, overrides)
    dist = setup(cfg)  # under torchrun: the process group, before any rank writes
    try:
        if resume:
            from agentdistill.distill.checkpoint import resolve

            resolve(resume)  # FileNotFoundError before any work
        dist.main_first(lambda: prepare_output_dir(Path(cfg.output_dir), bool(resume), overwrite))
        trainer = Trainer(cfg)
        if resume:
            trainer.load_checkpoint(resume)
        summary = trainer.fit()
    except Exception as exc:  # torchrun reports this rank's error as the run's failure
        if dist.distributed:
            record_failure(exc)
        raise
    del trainer  # its DDP / FSDP wrappers hold the process group
    shutdown(dist)
    return summary


def print_config(method: str | None) -> str:
    """The full default config of ``method`` (default opd) as commented YAML."""
    from agentdistill.distill.config import METHODS
    from agentdistill.distill.config_yaml import default_config

    method = method or "opd"
    if method not in METHODS:
        raise ConfigError(f"--print-config: unknown method {method!r}; one of {', '.join(METHODS)}")
    return config_yaml(default_config(method))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agentdistill.distill.trainer CONFIG.yaml [--resume DIR | --overwrite]
    [--set key=value]`` or ``--print-config [METHOD]``."""
    import argparse

    from agentdistill.distill.config import parse_overrides

    ap = argparse.ArgumentParser(prog="agentdistill train", description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", help="YAML train config (with --print-config: a method)")
    ap.add_argument("--resume", default=None, help="checkpoint dir, run dir, or .../latest")
    ap.add_argument("--overwrite", action="store_true", help="replace an earlier run in output_dir")
    ap.add_argument("--print-config", action="store_true",
                    help="print the full default config of the method given as CONFIG (default opd)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set steps=5 --set optim.lr=1e-4")
    args = ap.parse_args(argv)
    try:
        if args.print_config:
            print(print_config(args.config), end="")
            return 0
        if args.config is None:
            raise ConfigError("give a YAML train config (or --print-config [METHOD])")
        overrides = parse_overrides(args.set)
        summary = run_train(args.config, resume=args.resume, overrides=overrides,
                            overwrite=args.overwrite)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if is_main_process():
        print(json.dumps(summary, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
