"""The sweep memory estimate, computed from a config, against the peak RSS a real sweep reaches."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from fairmerge.errors import ConfigError, ModelError
from fairmerge.vectors.memory import estimate_sweep_memory

CONFIG = BertConfig(
    vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1536
)

# A child process: RSS of the model alone, then the high-water mark of a sweep over it. The mark is
# reset after the set-up (``5`` into /proc/self/clear_refs resets VmHWM), so transient memory of the
# imports and the model's random init cannot hide the sweep's own peak.
CHILD = """
import json, sys, torch
from transformers import BertConfig, BertForSequenceClassification
from fairmerge.vectors import InPlaceMerger

def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024

config, base, mode, *fts = sys.argv[1:]
torch.set_num_threads(1)
model = BertForSequenceClassification(BertConfig.from_json_file(config)).eval()
with open("/proc/self/clear_refs", "w") as reset:
    reset.write("5")
before = status("VmRSS")
merger = InPlaceMerger.from_checkpoints(model, base, fts, uniform=mode == "uniform")
for lam in (0.2, 0.5, 1.0):
    merger.set_coefficients(lam if mode == "uniform" else [lam] + [0.1] * (len(fts) - 1))
peak = status("VmHWM")
print(json.dumps({"before": before, "peak": peak}))
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory")
    (root / "config.json").write_text(CONFIG.to_json_string())
    torch.manual_seed(0)
    base = BertForSequenceClassification(CONFIG)
    base.save_pretrained(root / "base")
    with torch.no_grad():
        for i in (1, 2, 3):
            for p in base.parameters():
                p.add_(0.01 * torch.randn_like(p))
            base.save_pretrained(root / f"ft{i}")
    return root


@pytest.mark.parametrize("mode", ["uniform", "streamed"])
def test_estimate_matches_the_measured_peak(checkpoints, mode):
    fts = [str(checkpoints / f"ft{i}") for i in (1, 2, 3)]
    command = [sys.executable, "-c", CHILD, str(checkpoints / "config.json"), str(checkpoints / "base"), mode]
    done = subprocess.run([*command, *fts], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    measured = report["peak"] - report["before"]  # what the sweep added on top of the loaded model
    assert report["peak"] > report["before"]
    estimate = estimate_sweep_memory(CONFIG, n_vectors=3, mode=mode)  # type: ignore[arg-type]
    expected = estimate.host_bytes - estimate.items["model"]
    assert 0.75 * expected <= measured <= 1.3 * expected, (measured / 2**20, expected / 2**20)


def test_plan_for_the_7b_config_fits_one_80gb_gpu_with_lora_vectors():
    from transformers import LlamaConfig

    llama = LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_attention_heads=32,
        num_key_value_heads=32,
        num_hidden_layers=32,
        vocab_size=32000,
        pad_token_id=0,
    )
    plan = estimate_sweep_memory(
        llama,
        dtype=torch.bfloat16,
        n_vectors=30,
        mode="lora",
        device="cuda",
        lora_targets=["q_proj", "v_proj"],
    )
    assert 6.5e9 < plan.parameters < 6.8e9  # Llama-2-7B with a 2-class head, counted from the config
    assert plan.fits(80) and "peak device memory" in plan.describe()
    dense = estimate_sweep_memory(llama, dtype=torch.bfloat16, n_vectors=30, mode="per_vector", device="cuda")
    assert not dense.fits(80)  # what materialising every subgroup vector would need
    with pytest.raises(ConfigError, match="mode"):
        estimate_sweep_memory(llama, n_vectors=1, mode="dense")  # type: ignore[arg-type]


def test_uniform_sum_of_eight_vectors_costs_what_one_costs():
    plan = estimate_sweep_memory(CONFIG, n_vectors=8, mode="uniform")
    one = estimate_sweep_memory(CONFIG, n_vectors=1, mode="uniform")
    assert plan.host_bytes == one.host_bytes  # fp32: the sum of 8 vectors costs what one vector does


def test_config_with_custom_code_is_refused_without_running_it(tmp_path):
    """A config whose auto_map names its own modeling file gets a one-line ModelError; the file never runs."""
    from transformers import PretrainedConfig

    marker = tmp_path / "ran"
    (tmp_path / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = PretrainedConfig(
        auto_map={"AutoModelForSequenceClassification": "modeling_evil.EvilModel"}, name_or_path=str(tmp_path)
    )
    config.model_type = "evil"
    with pytest.raises(ModelError, match="auto_map") as caught:
        estimate_sweep_memory(config, n_vectors=2)
    assert "\n" not in str(caught.value)
    assert not marker.exists()
