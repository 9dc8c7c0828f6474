"""The trained students shipped with the package: ``--policy smollm2-sokoban`` (and -v2),
``--policy smollm2-webshop``."""

from __future__ import annotations

import json

import pytest

from agentdistill.agents.models import NAMED_ADAPTERS, ModelLoadError, named_adapter

# Each shipped student and the model its adapter sits on: v2 is a LoRA trained on the
# merged smollm2-sokoban weights (the warm start of configs/demo/sokoban_warmstart.yaml).
SHIPPED_BASES = {"smollm2-sokoban": "smollm2", "smollm2-sokoban-v2": "smollm2-sokoban",
                 "smollm2-webshop": "smollm2"}
# The env each was trained on and the answer length its number was measured with.
SHIPPED_ENVS = {"smollm2-sokoban": ("agentdistill/Sokoban-v0", 8),
                "smollm2-sokoban-v2": ("agentdistill/Sokoban-v0", 8),
                "smollm2-webshop": ("agentdistill/WebShop-v0", 48)}


def test_every_named_adapter_is_listed_here():
    assert set(NAMED_ADAPTERS) == set(SHIPPED_BASES) == set(SHIPPED_ENVS)


@pytest.mark.parametrize(("name", "base"), sorted(SHIPPED_BASES.items()))
def test_the_shipped_adapter_is_a_smollm2_lora_with_its_settings(name, base):
    """The files a wheel carries: a PEFT LoRA on SmolLM2's 30 blocks (hidden 576), small,
    and the settings its committed number was measured with."""
    from safetensors import safe_open

    path, meta = named_adapter(name)
    assert path == NAMED_ADAPTERS[name]
    assert (path / "adapter_model.safetensors").stat().st_size <= 20 * 2**20
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == base
    env, answer_tokens = SHIPPED_ENVS[name]
    assert meta["env"] == env
    assert meta["measured"]["episodes"] == 128 and 0 < meta["measured"]["success"] <= 128
    assert meta["defaults"] == {"history_k": 1, "response_prefix": "<action>",
                                "max_new_tokens": answer_tokens, "dtype": "auto"}
    with safe_open(str(path / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
        a = f.get_tensor(next(k for k in keys if "layers.0.self_attn.q_proj.lora_A" in k))
    blocks = {int(k.split("layers.")[1].split(".")[0]) for k in keys}
    assert blocks == set(range(30)) and a.shape == (config["r"], 576)
    assert named_adapter(f" {name.upper()} ")[0] == path  # names are case-insensitive
    assert named_adapter("smollm2") is None and named_adapter("some/dir") is None


def test_shipped_defaults_fill_only_what_the_user_left_unset(capsys):
    from agentdistill import cli

    unset = dict(history_k=None, dtype=None, response_prefix=None, max_new_tokens=None)
    env = "agentdistill/Sokoban-v0"
    assert cli.shipped_defaults("smollm2-sokoban", env, **unset) == (1, "auto", "<action>", 8)
    assert cli.shipped_defaults("smollm2", env, **unset) == (2, "float32", None, None)
    mine = dict(history_k=3, dtype="float32", response_prefix="", max_new_tokens=20)
    assert cli.shipped_defaults("smollm2-sokoban", env, **mine) == (3, "float32", "", 20)
    cli.shipped_defaults("smollm2-sokoban", "agentdistill/WebShop-v0", **unset)
    assert "trained on agentdistill/Sokoban-v0" in capsys.readouterr().out


def test_a_missing_shipped_adapter_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(NAMED_ADAPTERS, "smollm2-sokoban", tmp_path / "gone")
    with pytest.raises(ModelLoadError, match="reinstall"):
        named_adapter("smollm2-sokoban")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_model.safetensors").write_bytes(b"")
    (broken / "policy.json").write_text("{not json")
    monkeypatch.setitem(NAMED_ADAPTERS, "smollm2-sokoban", broken)
    with pytest.raises(ModelLoadError, match="policy.json"):
        named_adapter("smollm2-sokoban")


@pytest.mark.slow
@pytest.mark.parametrize(("name", "modules"), [
    ("smollm2-sokoban", ("layers.7.self_attn.q_proj", "layers.7.mlp.down_proj")),
    ("smollm2-sokoban-v2", ("layers.12.mlp.up_proj",)),
    ("smollm2-webshop", ("layers.20.self_attn.v_proj",)),
])
def test_loading_by_name_merges_the_adapter_into_its_base(name, modules):
    """``load_model(name)`` = its base (SmolLM2; for v2 the merged smollm2-sokoban: the
    loader follows the base each adapter names) + (alpha / r) * B @ A on every adapted
    linear layer, read back from the shipped file."""
    import torch
    from safetensors.torch import load_file

    from agentdistill.agents.models import load_model, smollm2_gguf_path

    try:
        smollm2_gguf_path()
    except ModelLoadError as exc:
        pytest.skip(f"no bundled SmolLM2: {exc}")
    path, _ = named_adapter(name)
    config = json.loads((path / "adapter_config.json").read_text())
    lora = load_file(str(path / "adapter_model.safetensors"))
    base, _ = load_model(SHIPPED_BASES[name])
    trained, _ = load_model(name)
    for module in modules:
        prefix = f"base_model.model.model.{module}"
        a, b = lora[f"{prefix}.lora_A.weight"], lora[f"{prefix}.lora_B.weight"]
        delta = (config["lora_alpha"] / config["r"]) * (b @ a)
        w0 = base.get_submodule(f"model.{module}").weight.detach()
        w1 = trained.get_submodule(f"model.{module}").weight.detach()
        assert delta.abs().max() > 1e-3  # the adapter was trained: it changes the weights
        torch.testing.assert_close(w1, w0 + delta, atol=1e-5, rtol=1e-4)
