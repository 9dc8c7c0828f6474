"""Trainer configuration: pydantic models, unknown keys rejected, readable errors.

One YAML file describes a whole run (model, env, rollout, teacher, loss/method,
curriculum, optimizer, evaluation). ``method`` selects the recipe and the fields below it
tune it; every method runs through the same trainer loop:

=============  =======================================================================
method         what the trainer does
=============  =======================================================================
opd            OPD policy-gradient loss, A_t = c * (log pi_T - log pi_old)
grpo           PPO-clip with GRPO group advantages (no teacher needed)
grpo+opd       A_t = A_GRPO + c * (log pi_T - log pi_old)
sod            grpo+opd with SOD per-turn weights on the OPD term
tcod_f2b       opd, training rollouts truncated to ``curriculum.depth(step)`` student turns
tcod_b2f       opd, the first ``replay_length(step, L_expert)`` expert actions replayed
tcod_adaptive  opd with f2b depth advanced by the adaptive rule (curriculum.py)
skill_sd       GRPO + lambda * importance-weighted sampled reverse KL, skills in the
               teacher's context, teacher synced to the student (EMA / hard copy)
sft_expert     behaviour cloning: NLL of the env expert's actions in the answer format,
               rendered through the student's own prompts (agents/expert_data.py)
seqkd          sequence-level KD: NLL of the teacher's own generations under its privileged
               context, re-rendered with the student's context
=============  =======================================================================

``loss.estimator`` picks how the teacher term of the distillation methods (opd, tcod_*,
grpo+opd, sod, skill_sd) reaches the student's response tokens:

=========  ============================================================================
estimator  teacher term
=========  ============================================================================
k1         policy-gradient reward c * (log pi_T - log pi_old)(y_t) (skill_sd: its
           importance-weighted sampled KL); ``loss.baseline`` adds the vOPD baseline
k2 / k3    ``(r^2 / 2)`` / ``exp(-r) + r - 1`` at the sampled tokens, differentiated through
           log pi_theta (expected gradient: reverse / forward KL)
full       the exact divergence over the vocabulary (``loss.divergence``, ``loss.beta``),
           teacher logits recomputed at the response positions in the step
topk       the same on the teacher's stored top-k support + a tail (``teacher.top_k > 0``)
=========  ============================================================================

Methods that add the teacher term to GRPO keep the GRPO PPO-clip loss and add the direct
term (k2/k3/full/topk) to it. ``loss.lmbda`` < 1 (opd, dense estimators) replaces that
fraction of each step's episodes with off-policy ones (``loss.offpolicy``: the expert's or
the teacher's, as in sft_expert / seqkd). Budgets: sft_expert and seqkd train on as many
episodes per step as a student step has (``tasks_per_step * group_size``, same step seeds);
the deterministic expert plays each seed once, since its group copies would be identical
rows with the same token-mean gradient. ``train_tokens`` is logged for every method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Method = Literal["opd", "grpo", "grpo+opd", "sod", "tcod_f2b", "tcod_b2f", "tcod_adaptive", "skill_sd",
                 "sft_expert", "seqkd"]
METHODS: tuple[str, ...] = get_args(Method)
Estimator = Literal["k1", "k2", "k3", "full", "topk"]
#: methods trained by maximum likelihood on fixed (expert / teacher) sequences
OFFPOLICY_METHODS = ("sft_expert", "seqkd")


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate; the message lists why."""


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors; field docstrings describe."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class SeedRange(Strict):
    """Seeds ``start, start+1, ..., start+count-1``."""

    start: int = 0
    """First seed."""
    count: int = Field(1, ge=1)
    """Number of consecutive seeds."""

    def seeds(self) -> list[int]:
        return list(range(self.start, self.start + self.count))


class LoraConfig(Strict):
    r: int = Field(16, ge=1)
    """LoRA rank."""
    alpha: float = 32.0
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the LoRA input (0 keeps rollouts and the loss pass deterministic)."""
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    """Linear layers that get adapters."""
    top_layers: int | None = Field(None, ge=1)
    """Adapters only in the last N decoder blocks, so the backward pass stops early (None: all)."""


class ModelConfig(Strict):
    name: str = "smollm2"
    """Student weights: 'smollm2', a local model dir, a PEFT adapter dir, a .gguf file or an HF id."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Weight dtype of the student (and of a separate teacher); 'auto': bfloat16 where the
    device computes it natively (CUDA with bf16, CPUs with AMX/AVX512-BF16), else float32."""
    device: str = "auto"
    """Torch device; 'auto' picks cuda when available, else cpu."""
    lora: LoraConfig | None = None
    """LoRA adapters to train (None: full fine-tuning)."""
    tiny_random_seed: int | None = None
    """Tests only: a tiny random model of this seed with SmolLM2's tokenizer."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, ~30% more compute)."""


class PoolConfig(Strict):
    """Envs of a rank's rollouts in worker processes or Ray actors (``agentdistill.envs.pool``)."""

    kind: Literal["process", "ray"] = "process"
    """'process': worker processes on the rank's machine; 'ray': Ray actors anywhere in the cluster."""
    num_workers: int = Field(2, ge=1)
    """Worker processes (or Ray actors) of each rank's pool."""
    num_envs: int | None = Field(None, ge=1)
    """Envs in each rank's pool (None: one per episode of the rank's share of a step)."""
    ray_address: str | None = None
    """kind 'ray': the cluster every rank joins ('auto' or 'HOST:PORT'); None: each rank starts its own."""
    num_cpus_per_worker: float = Field(1.0, gt=0.0)
    """kind 'ray': CPUs Ray reserves for each actor."""
    step_timeout: float | None = Field(60.0, gt=0.0)
    """Seconds an env step may take before its worker is restarted and its episode truncated."""

    @model_validator(mode="after")
    def _check(self) -> PoolConfig:
        ray_only = [f for f in ("ray_address", "num_cpus_per_worker") if f in self.model_fields_set]
        if self.kind != "ray" and ray_only:
            raise ValueError(f"env.pool.{ray_only[0]} only applies to env.pool.kind='ray'")
        return self


class EnvConfig(Strict):
    id: str = "agentdistill/Sokoban-v0"
    """Registered gymnasium env id."""
    kwargs: dict[str, Any] = {}
    """Keyword arguments for gym.make."""
    max_turns: int | None = Field(None, ge=1)
    """Turn limit of every episode (None: the env's max_episode_steps)."""
    history_k: int = Field(2, ge=0)
    """Past (action, observation) steps shown in each prompt."""
    train_options: dict[str, Any] = {"split": "train"}
    """reset() options of training episodes."""
    eval_options: dict[str, Any] = {"split": "test"}
    """reset() options of evaluation episodes."""
    train_seeds: SeedRange = SeedRange(start=100_000, count=100_000)
    """Pool the training task seeds of every step are drawn from (keep it disjoint from eval.seeds)."""
    pool: PoolConfig | None = None
    """Step envs in a process / Ray pool per rank (None: in the trainer's process)."""


class RolloutConfig(Strict):
    tasks_per_step: int = Field(4, ge=1)
    """Distinct training tasks (seeds) per step."""
    group_size: int = Field(2, ge=1)
    """Rollouts per task (GRPO group; >= 2 for the GRPO methods)."""
    max_new_tokens: int = Field(64, ge=1)
    """Token budget of one student answer."""
    temperature: float = Field(1.0, gt=0.0)
    """Sampling temperature of training rollouts (on-policy methods need 1)."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus mass of training rollouts (on-policy methods need 1)."""
    response_prefix: str = ""
    """Forced start of every answer, e.g. "<action>" (agents.policies.LLMPolicy)."""
    max_student_turns: int | None = Field(None, ge=1)
    """Training rollouts stop after this many student turns (None: turn limit; eval: full)."""


class TeacherConfig(Strict):
    source: Literal["self", "model"] = "self"
    """'self': the student's weights with a privileged context; 'model': a separate model."""
    model: str | None = None
    """The separate teacher (source='model'): a path, HF id or 'smollm2'."""
    context: Literal["plain", "expert_action", "expert_plan", "skills"] = "expert_action"
    """What the teacher sees beyond the student's prompt: nothing, the expert's next action or plan, or skills."""
    hint_placement: Literal["system", "user"] = "system"
    """Where the expert hint goes: the system prompt or the end of the user message."""
    unhinted: Literal["plain", "skip"] = "plain"
    """Turns where the expert has no hint (an unsolvable or finished position): 'plain' scores
    them with the teacher on the plain prompt; 'skip' drops them from the distillation loss
    (there the privileged teacher is only the base model)."""
    sync: Literal["live", "frozen", "ema", "copy"] = "frozen"
    """How a self-teacher follows the student: live, frozen at start, EMA, or hard copy."""
    ema_rate: float = Field(0.05, gt=0.0, le=1.0)
    """sync=ema: teacher <- (1 - rate) * teacher + rate * student after each step."""
    copy_every: int = Field(10, ge=1)
    """sync=copy: steps between hard copies."""
    top_k: int = Field(0, ge=0)
    """Teacher log-probs stored per token for its top-k tokens (0: only the sampled token)."""
    batch_size: int = Field(8, ge=1)
    """Turns per teacher scoring forward pass."""
    tiny_random_seed: int | None = None
    """Tests and benchmarks: with source='model', a tiny random model of this seed (fixed)."""

    @model_validator(mode="after")
    def _check(self) -> TeacherConfig:
        if self.source == "model" and not self.model and self.tiny_random_seed is None:
            raise ValueError("teacher.source='model' needs teacher.model (a path, HF id or 'smollm2')")
        if self.tiny_random_seed is not None and self.source != "model":
            raise ValueError("teacher.tiny_random_seed needs teacher.source='model'")
        if self.source == "model" and self.sync != "frozen":
            raise ValueError("a separate teacher model only supports teacher.sync='frozen'")
        return self


class LossConfig(Strict):
    method: Method = "opd"
    """The training recipe (module docstring table)."""
    opd_coef: float = Field(1.0, ge=0.0)
    """c: weight of the teacher term."""
    clip_ratio: float = Field(0.2, gt=0.0)
    """PPO clip epsilon of the ratio pi_theta / pi_old."""
    reward: Literal["won", "score", "return"] = "won"
    """GRPO episode reward: success (0/1), the env score, or the summed return."""
    sod_eps: float = Field(1e-6, gt=0.0)
    """SOD: eps in w_k = min((d_1 + eps) / (d_k + eps), 1 + delta)."""
    sod_delta: float = Field(0.2, ge=0.0)
    """SOD: the weight cap is 1 + delta."""
    sd_lambda: float = Field(1.0, ge=0.0)
    """Skill-SD: weight of the distillation term next to GRPO."""
    sd_clip: float = Field(2.0, gt=0.0)
    """Skill-SD: importance ratio pi_theta / pi_old clamped to [0, sd_clip]."""
    estimator: Estimator = "k1"
    """How the teacher term reaches the response tokens: k1 | k2 | k3 | full | topk (see above)."""
    divergence: Literal["reverse_kl", "forward_kl", "jsd"] = "reverse_kl"
    """Divergence of the full / topk estimators (k1-k3 estimate reverse KL only)."""
    beta: float = Field(0.5, ge=0.0, le=1.0)
    """JSD mixture m = beta p_T + (1 - beta) p_S; 0 is forward KL, 1 reverse KL."""
    baseline: Literal["none", "full", "topk"] = "none"
    """vOPD baseline sg(KL_t) added to the k1 reward (unbiased), exact or top-k."""
    lmbda: float = Field(1.0, ge=0.0, le=1.0)
    """GKD: fraction of each step's episodes sampled by the student (opd with full / topk)."""
    offpolicy: Literal["expert", "teacher"] = "expert"
    """Who plays the other 1 - lmbda episodes: the env expert or the privileged teacher."""
    chunk_size: int | None = Field(64, ge=1)
    """Token rows per chunk of the full-vocabulary divergence (memory; None: one chunk)."""
    kl_ref_coef: float = Field(0.0, ge=0.0)
    """Weight of the k3 KL(pi_theta || pi_initial) penalty on response tokens (0: off)."""
    entropy_coef: float = Field(0.0, ge=0.0)
    """Weight of the entropy bonus (full-vocabulary entropy of pi_theta per token; 0: off)."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """GRPO advantage (r - group mean) divided by the group's std, the batch's std, or nothing."""


class CurriculumConfig(Strict):
    K: int = Field(6, ge=1)
    """TCOD: steps per depth (or replay) increment; adaptive: the fallback period."""
    horizon: int | None = Field(None, ge=1)
    """f2b / adaptive: the largest depth (None: env.max_turns); b2f has no depth cap."""
    window: int = Field(3, ge=1)
    """Adaptive: steps per averaging window."""


class SkillsConfig(Strict):
    bank_path: str | None = None
    """Skill bank JSON to start from and update (None: output_dir/skills.json)."""
    max_skills: int = Field(64, ge=1)
    """Skills kept per task type (oldest failure-derived evicted first)."""
    top_k: int = Field(2, ge=1)
    """Skills retrieved into the teacher's context per task."""
    summarizer: Literal["student", "extractive"] = "extractive"
    """Who writes skills: the student LLM (extractive fallback) or the extractive summary."""


class OptimConfig(Strict):
    lr: float = Field(1e-5, gt=0.0)
    """AdamW peak learning rate."""
    weight_decay: float = Field(0.0, ge=0.0)
    """AdamW weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    grad_clip: float | None = Field(1.0, gt=0.0)
    """Max global gradient norm per optimizer step (None: no clipping)."""
    micro_batch_size: int = Field(4, ge=1)
    """Turns per forward/backward pass (gradient accumulation; no effect on the math)."""
    old_logprobs: Literal["sampler", "recompute"] = "sampler"
    """pi_old: the sampler's log-probs, or a no-grad pass of the policy before the update."""
    ppo_epochs: int = Field(1, ge=1)
    """Passes over each rollout batch; all reuse the sampler's pi_old (so PPO clipping acts)."""
    mini_batches: int = Field(1, ge=1)
    """Optimizer steps per pass: the batch is shuffled and cut into this many parts."""
    warmup_steps: int = Field(0, ge=0)
    """Training steps of linear LR warmup, (step + 1) / warmup_steps."""
    schedule: Literal["constant", "cosine"] = "constant"
    """LR after warmup: constant, or cosine decay over the remaining training steps."""


class EvalConfig(Strict):
    seeds: list[int] | SeedRange = SeedRange(start=0, count=64)
    """Held-out task seeds (a list or a range)."""
    every: int = Field(0, ge=0)
    """Evaluate every N steps (0: only before and after training)."""
    before: bool = True
    """Evaluate before training."""
    after: bool = True
    """Evaluate after the last step."""
    temperature: float = Field(0.0, ge=0.0)
    """Evaluation sampling temperature (0: greedy)."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Evaluation answer budget (None: rollout.max_new_tokens)."""
    measure_kl: bool = True
    """Also measure the exact full-vocabulary KL(student || teacher) on eval turns."""
    kl_max_turns: int = Field(256, ge=0)
    """Turns used for the exact KL (0: all)."""
    teacher_policy: bool = False
    """Also measure the hinted teacher's own success (once if it is frozen)."""

    def seed_list(self) -> list[int]:
        return self.seeds.seeds() if isinstance(self.seeds, SeedRange) else list(self.seeds)


class LogConfig(Strict):
    tensorboard: bool = True
    """Write TensorBoard scalars to output_dir/tb."""
    plots: bool = True
    """Write KL and success PNGs to output_dir/plots at the end."""
    progress: bool = True
    """Show a progress bar on stderr."""
    wandb: bool = False
    """Also log every record to Weights & Biases (pip install wandb; WANDB_MODE=offline
    logs without a network)."""
    wandb_project: str = "agentdistill"
    """The W&B project of ``log.wandb`` runs (the run is named after output_dir)."""

    @model_validator(mode="after")
    def _wandb_installed(self) -> LogConfig:
        if self.wandb:
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise ValueError("log.wandb: true needs the wandb package: pip install wandb") from None
        return self


class DistributedConfig(Strict):
    """How a run spreads over processes started by torchrun / accelerate launch (distributed.py)."""

    strategy: Literal["auto", "single", "ddp", "fsdp"] = "auto"
    """'auto': ddp under a launcher (WORLD_SIZE > 1), else single; ddp: DistributedDataParallel; fsdp: FSDP2 fully_shard."""
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    """torch.distributed backend ('auto': nccl on CUDA devices, gloo on CPU)."""
    timeout_s: float = Field(1800.0, gt=0.0)
    """Seconds a collective waits for the other ranks before the run fails."""


class TrainConfig(Strict):
    """A whole run; see the module docstring for ``loss.method``."""

    seed: int = 0
    """Seeds the training task draw, generation and initialisation."""
    output_dir: str = "runs/train"
    """Run directory (metrics, checkpoints, evals); a new run needs it empty."""
    num_threads: int | None = Field(None, ge=1)
    """torch.set_num_threads (None: torch default)."""
    steps: int = Field(10, ge=0)
    """Training steps (one rollout batch and its updates each)."""
    checkpoint_every: int = Field(0, ge=0)
    """Save a checkpoint every N steps (0: only at the end)."""
    model: ModelConfig = ModelConfig()
    """The student."""
    env: EnvConfig = EnvConfig()
    """The environment and its seeds."""
    rollout: RolloutConfig = RolloutConfig()
    """Training rollouts."""
    teacher: TeacherConfig = TeacherConfig()
    """The teacher that scores student tokens."""
    loss: LossConfig = LossConfig()
    """Method and loss terms."""
    curriculum: CurriculumConfig = CurriculumConfig()
    """TCOD curricula."""
    skills: SkillsConfig = SkillsConfig()
    """Skill-SD skill bank."""
    optim: OptimConfig = OptimConfig()
    """Optimizer and update schedule."""
    eval: EvalConfig = EvalConfig()
    """Held-out evaluation."""
    log: LogConfig = LogConfig()
    """Logging outputs."""
    train: DistributedConfig = DistributedConfig()
    """Processes and devices: single, DDP or FSDP (torchrun / accelerate launch)."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        m = self.loss.method
        if m in ("grpo", "grpo+opd", "sod", "skill_sd") and self.rollout.group_size < 2:
            raise ValueError(f"loss.method={m!r} needs rollout.group_size >= 2 (GRPO groups)")
        if m == "skill_sd" and self.teacher.context != "skills":
            raise ValueError("loss.method='skill_sd' needs teacher.context='skills'")
        if self.teacher.context == "skills" and m != "skill_sd":
            raise ValueError("teacher.context='skills' is only used by loss.method='skill_sd'")
        if m == "skill_sd" and self.teacher.source != "self":
            raise ValueError("loss.method='skill_sd' is self-distillation: teacher.source='self'")
        if m == "skill_sd" and self.teacher.sync not in ("ema", "copy"):
            raise ValueError(f"loss.method='skill_sd' needs teacher.sync 'ema' or 'copy', not "
                             f"{self.teacher.sync!r}: a frozen teacher (LoRA: the base model) never "
                             "learns, a live one is the student itself")
        rc = self.rollout
        if m not in OFFPOLICY_METHODS and (rc.temperature != 1.0 or rc.top_p < 1.0):
            raise ValueError(f"loss.method={m!r} needs rollout.temperature 1 and rollout.top_p 1 "
                             "(pi_old is the sampler's raw temperature-1 log-prob, so tempered or "
                             "nucleus sampling would bias every ratio and advantage); set "
                             "eval.temperature for evaluation instead")
        if m == "tcod_b2f" and self.curriculum.horizon is not None:
            raise ValueError("curriculum.horizon does not apply to loss.method='tcod_b2f' (after "
                             "the replayed expert actions the student plays to env.max_turns)")
        _check_estimator(self)
        return self

    @property
    def uses_teacher(self) -> bool:
        """A teacher is built (sft_expert: only for the evaluation's KL to it)."""
        return self.loss.method != "grpo"

    @property
    def scores_rollouts(self) -> bool:
        """Training turns are scored by the teacher (every teacher method but sft/seqkd)."""
        return self.uses_teacher and self.loss.method not in OFFPOLICY_METHODS

    @property
    def teacher_logits_in_step(self) -> bool:
        """The update recomputes the teacher's full logits (estimator or baseline ``full``)."""
        return self.scores_rollouts and "full" in (self.loss.estimator, self.loss.baseline)

    @property
    def offpolicy_source(self) -> str | None:
        """Who plays the step's off-policy episodes: 'expert', 'teacher' or None (none)."""
        m = self.loss.method
        if m == "sft_expert":
            return "expert"
        if m == "seqkd":
            return "teacher"
        return self.loss.offpolicy if self.loss.lmbda < 1 else None

    @property
    def uses_grpo(self) -> bool:
        return self.loss.method in ("grpo", "grpo+opd", "sod", "skill_sd")


_DISTILL_FIELDS = ("estimator", "divergence", "beta", "baseline", "lmbda", "offpolicy")


def _check_estimator(cfg: TrainConfig) -> None:
    """Reject estimator settings that mean nothing for the method (one line each)."""
    lc, m = cfg.loss, cfg.loss.method
    est = lc.estimator
    set_here = [f for f in _DISTILL_FIELDS if f in lc.model_fields_set]
    if m == "grpo" or m in OFFPOLICY_METHODS:
        why = "it has no teacher term" if m == "grpo" else "it is maximum likelihood on fixed sequences"
        if set_here:
            raise ValueError(f"loss.{set_here[0]} does not apply to loss.method={m!r}: {why}")
        if m == "seqkd" and cfg.teacher.source == "self" and cfg.teacher.context == "plain":
            raise ValueError("loss.method='seqkd' with a plain self-teacher would distil the student "
                             "into itself: use teacher.context='expert_action'/'expert_plan' or "
                             "teacher.source='model'")
        return
    if est in ("k1", "k2", "k3") and lc.divergence != "reverse_kl":
        raise ValueError(f"loss.estimator={est!r} estimates reverse KL from sampled tokens; "
                         f"loss.divergence={lc.divergence!r} needs loss.estimator 'full' or 'topk'")
    if "beta" in lc.model_fields_set and lc.divergence != "jsd":
        raise ValueError("loss.beta only matters with loss.divergence='jsd'")
    if lc.baseline != "none" and est != "k1":
        raise ValueError(f"loss.baseline centres the k1 policy-gradient reward; it does nothing "
                         f"with loss.estimator={est!r}")
    if lc.baseline != "none" and m == "skill_sd":
        raise ValueError("loss.baseline does not apply to skill_sd (its k1 term is importance-"
                         "weighted, not a policy-gradient reward)")
    for name, value in (("estimator", est), ("baseline", lc.baseline)):
        if value == "topk" and cfg.teacher.top_k < 1:
            raise ValueError(f"loss.{name}='topk' reads the teacher's stored top-k log-probs: "
                             "set teacher.top_k > 0")
    if lc.lmbda < 1:
        if m != "opd":
            raise ValueError(f"loss.lmbda < 1 is for loss.method='opd' only ({m!r} needs the "
                             "student's own rollouts: GRPO rewards, TCOD windows, SOD weights)")
        if est not in ("full", "topk"):
            raise ValueError(f"loss.lmbda < 1 mixes in off-policy sequences, where loss.estimator="
                             f"{est!r} (a sampled estimator) is biased: use 'full' or 'topk'")
        if lc.offpolicy == "teacher" and cfg.teacher.source == "self" and cfg.teacher.context == "plain":
            raise ValueError("loss.offpolicy='teacher' with a plain self-teacher samples the student "
                             "itself: use a privileged teacher.context or teacher.source='model'")
    elif "offpolicy" in lc.model_fields_set:
        raise ValueError("loss.offpolicy only matters with loss.lmbda < 1")


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not a config field; check the spelling)"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any] | None, source: str = "config") -> TrainConfig:
    """Validate a config mapping; raises :class:`ConfigError` listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of config fields (key: value), "
            f"got {_kind(data)}; see configs/ for examples"
        )
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as err:
        problems = _format_errors(err)  # one problem: one line; several: one per line
        sep, problems = (" ", problems.strip()) if err.error_count() == 1 else ("\n", problems)
        raise ConfigError(f"{source} is not a valid train config:{sep}{problems}") from None


def _kind(data: Any) -> str:
    """``a list`` / ``a string`` / ``the value 5``: what a YAML document held instead."""
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return "a string"
    return f"the value {data!r}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line from a YAML error: the problem and where (line/column are 1-based)."""
    problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or ["?"])[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items to ``{dotted key: YAML value}``; bad items raise ConfigError."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"--set expects KEY=VALUE (e.g. --set optim.lr=1e-4), got {item!r}")
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"--set {item!r}: the value is not valid YAML ({_yaml_problem(exc)}); "
                "fix it or quote it, e.g. --set 'optim.betas=[0.9, 0.99]'"
            ) from None
        except RecursionError:
            raise ConfigError(f"--set {key}: the value is nested too deeply") from None
    return overrides


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set each dotted key in ``data`` in place, creating sections as needed."""
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                section = ".".join(parts[: i + 1])
                raise ConfigError(
                    f"--set {key}: {section} is not a section (it holds {node!r}); "
                    f"set {section}=VALUE instead"
                )
        node[parts[-1]] = value


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read and validate a YAML config file (``overrides`` are merged on top, dotted keys)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file at {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}); "
            "a train config is a YAML file saved as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a train config") from None
    data = data if data is not None else {}
    if not isinstance(data, dict):
        parse_config(data, source=str(path))  # raises: the top level must be a mapping
    _apply_overrides(data, overrides or {})
    return parse_config(data, source=str(path))
