"""The machine a run computed on: recorded, shown, and named when pooled runs differ in it."""

import json
import logging

import torch

from tests.pipeline.test_compare import fake_run
from vmoer_ppl.pipeline.machine import fit_machine, machine, machine_label, machine_mismatch
from vmoer_ppl.pipeline.seeds import compare_runs, load_runs


def record(cpu="AMD EPYC", cap="AVX2", torch_version="2.13.0", accelerator=None, sig=None):
    return {
        "cpu": cpu,
        "cpu_signature": sig,
        "cpu_capability": cap,
        "cores": 2,
        "threads": 2,
        "accelerator": accelerator,
        "platform": "Linux",
        "versions": {"torch": torch_version},
    }


def test_machine_describes_this_process():
    m = machine()
    assert m["cpu"] and isinstance(m["cpu"], str)
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["threads"] == torch.get_num_threads() and m["cores"] >= 1
    assert m["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert (m["accelerator"] is None) == (not torch.cuda.is_available())
    json.dumps(m)  # written into fit.json and metrics.json
    assert m["matmul_gflops"] > 0


def test_measuring_the_speed_leaves_the_global_random_stream_alone():
    torch.manual_seed(7)
    want = torch.rand(3)
    torch.manual_seed(7)
    machine()  # written at the end of fit and evaluate: must not move a run's draws
    assert torch.equal(torch.rand(3), want)
    fast = {**record(sig="AuthenticAMD 25/1/1"), "matmul_gflops": 113.7}
    assert machine_label({"machine": fast}).endswith("(AVX2, 2 threads, 113.7 GFLOP/s)")


def test_label_and_mismatch():
    assert machine_label({"machine": record()}) == "AMD EPYC (AVX2, 2 threads)"
    assert machine_label({"machine": record(accelerator="H200")}).endswith("2 threads, H200)")
    assert machine_label({}) is None
    signed = machine_label({"machine": record(sig="AuthenticAMD 25/1/1")})
    assert signed == "AMD EPYC AuthenticAMD 25/1/1 (AVX2, 2 threads)"
    same = [record(), record(), None]  # an older run records nothing
    assert machine_mismatch(same) is None
    other = [record(), record(cpu="Xeon", cap="AVX512")]
    why = machine_mismatch(other)
    assert "2 different machines" in why and "Xeon (AVX512" in why and "AMD EPYC (AVX2" in why
    assert machine_mismatch([record(), record(torch_version="2.14")])


def test_the_cpuid_signature_tells_apart_processors_of_one_name():
    zen3, zen4 = (record(sig=f"AuthenticAMD 25/{m}/1") for m in (1, 17))
    why = machine_mismatch([zen3, zen4])  # a hypervisor names both "AMD EPYC"
    assert "AMD EPYC AuthenticAMD 25/1/1 (AVX2" in why and "AuthenticAMD 25/17/1" in why
    assert machine_mismatch([zen3, zen3]) is None
    assert machine_mismatch([zen3, record()]) is None  # an older run without one: not compared
    sig = machine()["cpu_signature"]
    assert sig is None or len(sig.split()) == 2 and sig.split()[1].count("/") == 2


def with_machine(d, rec):
    data = json.loads((d / "metrics.json").read_text())
    data["meta"]["machine"] = rec
    (d / "metrics.json").write_text(json.dumps(data))
    return d


def test_compare_names_the_machines_and_warns_when_they_differ(tmp_path, caplog):
    a = with_machine(fake_run(tmp_path, 0, 0.5, 0.4), record())
    b = with_machine(fake_run(tmp_path, 1, 0.5, 0.4), record())
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.pipeline.seeds"):
        load_runs([a, b])
    assert not caplog.records
    compare_runs([a, b], out=tmp_path / "cmp")
    assert "computed on AMD EPYC (AVX2, 2 threads)" in (tmp_path / "cmp.md").read_text()
    with_machine(b, record(cpu="Xeon", cap="AVX512"))
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.pipeline.seeds"):
        load_runs([a, b])
    assert "seeds are not their only difference" in caplog.text


def test_compare_also_reads_where_each_run_was_fitted(tmp_path, caplog):
    a = with_machine(fake_run(tmp_path, 0, 0.5, 0.4), record())
    b = with_machine(fake_run(tmp_path, 1, 0.5, 0.4), record())
    (b / "fit.json").write_text(json.dumps({"machine": record(cpu="Xeon", cap="AVX512")}))
    (a / "fit.json").write_text("{damaged")  # read as data only: no record, no error
    assert fit_machine(a) is None and fit_machine(b)["cpu"] == "Xeon"
    with caplog.at_level(logging.WARNING, logger="vmoer_ppl.pipeline.seeds"):
        load_runs([a, b])
    assert "Xeon (AVX512" in caplog.text
