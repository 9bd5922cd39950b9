"""Where a run computed: the processor, the kernels torch chose, threads and library versions.

Timings mean nothing without the machine, and results carry its float rounding: stage 1's LoRA
steps amplify last-bit differences between CPU kernels (AVX2 against AVX-512, say), so two
machines train different adapters from the same seed. ``fit.json`` and ``metrics.json`` record
this next to the timings.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from vmoer_ppl.adapter_io import library_versions
from vmoer_ppl.pipeline.run_dir import FIT_FILE
from vmoer_ppl.pipeline.workers import worker_threads

#: The packages whose versions decide a run's numbers.
PACKAGES = ("vmoer_ppl", "torch", "pyro-ppl", "transformers", "peft")


def cpuinfo() -> dict[str, str]:
    """``/proc/cpuinfo``'s fields, each at its first value (the first processor's).

    ``{}`` where there is no ``/proc/cpuinfo`` (not Linux).
    """
    info = Path("/proc/cpuinfo")
    if not info.exists():
        return {}
    found: dict[str, str] = {}
    for line in info.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found.setdefault(key.strip(), value.strip())
    return found


def cpu_model() -> str:
    """The processor's name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    fields = cpuinfo()
    if "model name" in fields:
        return fields["model name"]
    return platform.processor() or platform.machine()


#: ``/proc/cpuinfo`` fields of the x86 CPUID signature (vendor, family, model, stepping).
SIGNATURE_FIELDS = ("vendor_id", "cpu family", "model", "stepping")


def cpu_signature() -> str | None:
    """The processor's CPUID signature, ``"AuthenticAMD 25/1/1"`` (vendor family/model/stepping).

    Hypervisors often shorten the model name (``"AMD EPYC"`` for every EPYC generation); the
    signature still tells the generations apart. ``None`` where ``/proc/cpuinfo`` does not give
    it (not Linux, not x86).
    """
    fields = cpuinfo()
    if not all(k in fields for k in SIGNATURE_FIELDS):
        return None
    vendor, family, model, stepping = (fields[k] for k in SIGNATURE_FIELDS)
    return f"{vendor} {family}/{model}/{stepping}"


def matmul_gflops(n: int = 1024, repeats: int = 8) -> float:
    """The CPU's float32 matrix-product speed now, GFLOP/s (``n × n`` by ``n × n``).

    A run's timings compare across machines (and across the hours of one shared machine, whose
    speed moves with its neighbours: 160 and 114 GFLOP/s on one 2-core VM in one day) only next
    to the speed they ran at. Takes ≈ 0.2 s on 2 cores; torch's current thread count.
    """
    g = torch.Generator().manual_seed(0)  # not the global stream: a run's draws stay put
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    a @ b  # warm-up: first-call allocation and kernel selection
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return round(2 * n**3 * repeats / (time.perf_counter() - t) / 1e9, 1)


def machine(workers: int = 1) -> dict:
    """A description of this machine as the run sees it.

    Parameters
    ----------
    workers : int
        Processes the run's work was spread over (``--workers``; 1: this process).

    Returns
    -------
    dict
        ``cpu`` (model name), ``cpu_signature`` (:func:`cpu_signature`, may be ``None``),
        ``cpu_capability`` (the SIMD level of torch's CPU kernels:
        ``"AVX2"``, ``"AVX512"``, ...), ``cores`` (usable by this process), ``workers``,
        ``threads`` (torch's intra-op threads of each computing process), ``accelerator`` (CUDA
        device name or ``None``), ``matmul_gflops`` (:func:`matmul_gflops`, measured now),
        ``platform`` and ``versions`` (package -> version).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    cuda = torch.cuda.is_available()
    return {
        "cpu": cpu_model(),
        "cpu_signature": cpu_signature(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": cores,
        "workers": workers,
        "threads": worker_threads(workers) if workers > 1 else torch.get_num_threads(),
        "accelerator": torch.cuda.get_device_name() if cuda else None,
        "matmul_gflops": matmul_gflops(),
        "platform": platform.platform(),
        "versions": library_versions(PACKAGES),
    }


#: What decides a run's float rounding: the processor and kernels, accelerator, torch.
ROUNDING_KEYS = ("cpu", "cpu_capability", "accelerator")


def _named(m: dict, detail: str, signature: bool = False) -> str:
    """``"<cpu>[ <signature>] (<capability>, <detail>[, <accelerator>])"`` of a record."""
    acc = f", {m['accelerator']}" if m.get("accelerator") else ""
    sig = f" {m.get('cpu_signature')}" if signature else ""
    return f"{m.get('cpu')}{sig} ({m.get('cpu_capability')}, {detail}{acc})"


def _torch_version(m: dict):
    return (m.get("versions") or {}).get("torch")


def machine_mismatch(records) -> str | None:
    """Why runs may differ by more than their seeds: the machines they computed on, else ``None``.

    Parameters
    ----------
    records : iterable of dict or None
        :func:`machine` records of the runs (from ``metrics.json`` or ``fit.json``); ``None``
        for a run written before the record, which is skipped.

    Returns
    -------
    str or None
        A sentence naming the distinct machines, or ``None`` when they agree.
    """
    found = [m for m in records if isinstance(m, dict)]
    # the signature counts only where every run recorded one (older runs did not)
    signed = bool(found) and all(m.get("cpu_signature") for m in found)
    keys = (*ROUNDING_KEYS, "cpu_signature") if signed else ROUNDING_KEYS
    seen: dict = {}
    for m in found:
        seen.setdefault((*(m.get(k) for k in keys), _torch_version(m)), m)
    if len(seen) < 2:
        return None
    same_name = len({m.get("cpu") for m in seen.values()}) == 1
    named = "; ".join(
        _named(m, f"torch {_torch_version(m)}", signature=signed and same_name)
        for m in seen.values()
    )
    return (
        f"the runs were computed on {len(seen)} different machines ({named}): their float "
        "rounding differs (stage 1 amplifies it), so the seeds are not their only difference"
    )


def machine_label(meta: dict) -> str | None:
    """A run's machine in words, from its ``metrics.json`` ``meta``.

    Parameters
    ----------
    meta : dict
        ``metrics.json`` ``meta``.

    Returns
    -------
    str or None
        ``"<cpu>[ <signature>] (<capability>, [<workers> processes × ]<threads> threads[,
        <GFLOP/s>][, <accelerator>])"``, or ``None`` for a run written before the record.
    """
    m = meta.get("machine")
    if not isinstance(m, dict):
        return None
    speed = f", {m['matmul_gflops']:g} GFLOP/s" if m.get("matmul_gflops") else ""
    spread = f"{m['workers']} processes × " if (m.get("workers") or 1) > 1 else ""
    detail = f"{spread}{m.get('threads')} threads{speed}"
    return _named(m, detail, signature=bool(m.get("cpu_signature")))


def fit_machine(run_dir: Path) -> dict | None:
    """The machine a run's ``fit.json`` says stage 1 and SVI ran on (``None`` if not recorded).

    Parameters
    ----------
    run_dir : Path
        A run directory (read as data only; a damaged or foreign ``fit.json`` gives ``None``).

    Returns
    -------
    dict or None
        The :func:`machine` record written by ``vmoer fit``.
    """
    try:
        data = json.loads((Path(run_dir) / FIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    m = data.get("machine") if isinstance(data, dict) else None
    return m if isinstance(m, dict) else None
