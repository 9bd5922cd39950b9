"""Sharded SVI: shard losses sum to the batch loss; 2 gloo processes equal 1 process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyro
import pytest
import torch

from tests.infer.ddp_worker import fit
from vmoer_ppl import bayesianize
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.infer.sharding import ShardNorm, count_tokens, local_shards, shard_rows
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

ROOT = Path(__file__).resolve().parents[2]


def test_shards_partition_the_batch_without_duplicates_or_drops():
    idx = torch.randperm(17)
    parts = [shard_rows(idx, k, 4) for k in range(4)]
    assert sorted(torch.cat(parts).tolist()) == sorted(idx.tolist())
    assert local_shards(4) == [0, 1, 2, 3]  # one process runs every shard


def test_shard_losses_sum_to_the_batch_loss_and_gradient():
    # the weight family draws one global W per forward: the same seed gives the same W in every
    # shard, so the normalisation is checked exactly
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="weight")
    ids = torch.randint(32, (9, 5))
    mask = torch.ones_like(ids)
    mask[::2, :2] = 0
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(4, (9,))}

    def grads(loss):
        guide.zero_grad()
        loss.backward()
        return [p.grad.clone() for p in guide.parameters()]

    pyro.set_rng_seed(3)
    full = fused_loss(model, guide, **data)
    g_full = grads(full)
    norm = ShardNorm(9, count_tokens(model, data), 3)
    total, g_sum = 0.0, None
    for k in range(3):
        rows = shard_rows(torch.arange(9), k, 3)
        pyro.set_rng_seed(3)
        loss = fused_loss(model, guide, norm=norm, **{n: v[rows] for n, v in data.items()})
        total = total + loss.item()
        g = grads(loss)
        g_sum = g if g_sum is None else [a + b for a, b in zip(g_sum, g, strict=True)]
    assert abs(total - full.item()) < 1e-10
    for a, b in zip(g_full, g_sum, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_two_gloo_processes_equal_one_process(tmp_path):
    out, init = tmp_path / "ddp.pt", f"file://{tmp_path / 'rendezvous'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.infer.ddp_worker", str(r), "2", init, str(out)],
            cwd=ROOT,
            env=env,
        )
        for r in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    ddp = torch.load(out)
    single = fit(shards=2)
    assert ddp["losses"] == single.losses or torch.allclose(
        torch.tensor(ddp["losses"]), torch.tensor(single.losses), rtol=1e-10
    )
    for k, v in single.params.items():
        torch.testing.assert_close(ddp["params"][k], v, rtol=1e-9, atol=1e-12)


TORCHRUN = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517"]
#: accelerate's launcher for several processes on one machine (``--multi_gpu`` runs
#: torch.distributed.run, on CPU too; ``--cpu`` alone starts one process without mpirun)
ACCELERATE = ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
ACCELERATE += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
ACCELERATE += ["--main_process_port", "29518"]


def fit_twice(tmp_path, *extra, launcher=TORCHRUN) -> dict:
    """`vmoer fit` in 2 processes (``launcher``) and in one process with 2 shards, own caches."""
    from tests.pipeline.test_demo import save_tiny
    from tests.pipeline.test_fit_cli import fit_args, write_jsonl

    model, data = save_tiny(tmp_path / "tiny"), write_jsonl(tmp_path / "qa.jsonl")
    # the same kernels (one thread each) so that only the process split differs
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ddp = [sys.executable, *launcher, "-m", "vmoer_ppl.cli"]
    one = [sys.executable, "-m", "vmoer_ppl.cli"]
    for name, cmd, shards in (("ddp", ddp, []), ("one", one, ["--shards", "2"])):
        run_env = {**env, "VMOER_PPL_CACHE": str(tmp_path / f"cache-{name}")}
        argv = [*cmd, *fit_args(model, data, tmp_path / name), *shards, *extra]
        done = subprocess.run(argv, cwd=ROOT, env=run_env, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()[-3000:]
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["processes"] == (2 if name == "ddp" else 1)  # the launcher did start two
    return {d: json.loads((tmp_path / d / "fit.json").read_text()) for d in ("ddp", "one")}


#: accelerate's launcher runs torch.distributed.run too, and the stage-1 test below launches with
#: torchrun itself: the plain torchrun variant runs in `make test-slow` (~35 s each on 2 cores)
@pytest.mark.parametrize(
    "launcher",
    [pytest.param(TORCHRUN, marks=pytest.mark.slow), ACCELERATE],
    ids=["torchrun", "accelerate"],
)
def test_vmoer_fit_in_two_processes_equals_one_process_with_as_many_shards(tmp_path, launcher):
    from safetensors.torch import load_file

    fits = fit_twice(tmp_path, launcher=launcher)
    torch.testing.assert_close(
        torch.tensor(fits["ddp"]["families"]["logit-mf"]["losses"]),
        torch.tensor(fits["one"]["families"]["logit-mf"]["losses"]),
        rtol=1e-6,
        atol=1e-7,
    )
    a, b = (
        load_file(tmp_path / d / "adapters/logit-mf/router_adapter.safetensors")
        for d in ("ddp", "one")
    )
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-7)


def test_stage1_and_the_prefix_cache_under_torchrun_equal_one_process(tmp_path):
    """Stage-1 LoRA data parallel (gradients summed) and prefix states in per-process shards."""
    from safetensors.torch import load_file

    extra = ["--lora-steps", "3", "--lora-lr", "1e-2", "--lora-scope", "suffix"]
    fits = fit_twice(tmp_path, *extra)
    lora = [load_file(tmp_path / d / "stage1/adapter_model.safetensors") for d in ("ddp", "one")]
    assert lora[0].keys() == lora[1].keys() and lora[0]
    for k in lora[0]:
        torch.testing.assert_close(lora[0][k], lora[1][k], rtol=1e-4, atol=1e-6)
    regime = [json.loads((tmp_path / d / "stage1/regime.json").read_text()) for d in ("ddp", "one")]
    torch.testing.assert_close(
        torch.tensor(regime[0]["losses"]), torch.tensor(regime[1]["losses"]), rtol=1e-5, atol=1e-6
    )
    caches = [sorted((tmp_path / f"cache-{d}" / "prefix").glob("*")) for d in ("ddp", "one")]
    assert [p.name for p in caches[0]] == [p.name for p in caches[1]]  # no parts left behind
    assert all(p.suffix == ".safetensors" for p in caches[0]) and len(caches[0]) >= 2
    for a, b in zip(*caches, strict=True):  # every batch as in one process: the same states
        sa, sb = load_file(a), load_file(b)
        assert sa.keys() == sb.keys() == {"prompt_states", "option_states"}
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (a.name, k)
    torch.testing.assert_close(
        torch.tensor(fits["ddp"]["families"]["logit-mf"]["losses"]),
        torch.tensor(fits["one"]["families"]["logit-mf"]["losses"]),
        rtol=1e-4,
        atol=1e-5,
    )


def test_with_cuda_cpu_tensors_still_have_a_backend(monkeypatch):
    from vmoer_ppl.infer import sharding

    seen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(sharding.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(sharding.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(sharding.dist, "init_process_group", lambda backend: seen.append(backend))
    monkeypatch.setattr(sharding, "world", lambda: (0, 2))
    sharding.init_from_env()
    assert seen == ["cpu:gloo,cuda:nccl"]  # NCCL alone would refuse the CPU all-reduce
    assert sharding.backend_for(False) == "gloo"


def test_validation_is_split_across_processes_and_sums_to_one_process(monkeypatch):
    """Each process validates every world_size-th batch; the all-reduced sums give one value."""
    from tests.common import toy_batch, toy_net
    from vmoer_ppl.infer import early_stop

    model, guide = bayesianize(toy_net(), family="logit-mf", prior=0.5)
    ids, mask, labels = toy_batch(B=10, T=5, seed=5)
    data = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    kw = dict(num_samples=4, batch_size=3, seed=2)  # Monte Carlo: the draws must not move
    one = early_stop.validation_nll(model, guide, data, **kw)
    assert one == early_stop.validation_nll(model, guide, data, **kw)
    sums = []
    monkeypatch.setattr(early_stop, "all_reduce_sum", lambda v: sums.append(v) or v)
    for rank in (0, 1):
        monkeypatch.setattr(early_stop, "world", lambda rank=rank: (rank, 2))
        early_stop.validation_nll(model, guide, data, **kw)
    (nll0, n0), (nll1, n1) = sums[:2], sums[2:]
    assert (n0, n1) == (6.0, 4.0)  # batches 0 and 2 (3 + 3 rows), batches 1 and 3 (3 + 1)
    assert (nll0 + nll1) / (n0 + n1) == pytest.approx(one, rel=1e-12)
