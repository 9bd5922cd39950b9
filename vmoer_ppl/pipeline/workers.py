"""Independent tasks of one run (a family's fit, a router's evaluation) in worker processes.

The families of a run are fitted and evaluated independently (each from its own seed), so
``--workers N`` runs them in ``N`` processes of ``cores // N`` torch threads, for machines whose
threads scale worse than their processes. Whether that pays is measured, not assumed: on the
2-core VM of the demo it gave 1.11x on the fit and nothing on the evaluation (README:
"Processes instead of threads"), so the demo keeps one process.
Each task reloads the run's model and data from the run directory and the caches (a few seconds)
instead of receiving them pickled, and a worker keeps what it loaded for its next task.
Results come back as plain Python and NumPy values.

Thread counts change the order of float sums, so a run with other workers (or other cores)
agrees with this one to rounding, amplified by SVI's steps, not bit for bit.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pyro
import torch
from pyro.infer.util import is_validation_enabled
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

#: What a worker loaded for one run, kept for its next task (key -> value).
WORKER_MEMO: dict = {}

#: Modules a forkserver imports once for every later worker (a spawned one imports them anew,
#: ≈ 6 s of a 2-core machine each time).
PRELOAD = ("vmoer_ppl.pipeline.fit", "vmoer_ppl.pipeline.router_rows")


def worker_context():
    """Where workers start: a forkserver with :data:`PRELOAD` imported, else spawn (Windows).

    Never ``fork``: a child forked from a process that ran torch's thread pool can hang.
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx
    return mp.get_context("spawn")


def worker_threads(workers: int, threads: int | None = None) -> int:
    """Torch threads of each of ``workers`` processes sharing ``threads`` (default: torch's)."""
    threads = torch.get_num_threads() if threads is None else threads
    return max(1, threads // max(1, workers))


def check_workers(workers: int, processes: int) -> None:
    """Refuse ``--workers`` above 1 inside a ``torchrun`` job of ``processes`` > 1.

    Raises
    ------
    ValueError
        Naming the two ways to use the machine's processes.
    """
    if workers > 1 and processes > 1:
        raise ValueError(
            f"--workers {workers} under torchrun ({processes} processes): the processes already "
            "share the work; pass --workers 1, or run without torchrun"
        )


def _start_worker(
    threads: int, level: int, dtype: torch.dtype, validation: bool, cwd: str, env: dict
) -> None:
    """A worker's start: its threads; the parent's log level, dtype, validation, cwd and env.

    A forkserver started earlier holds the directory and environment of that moment; the
    parent's current ones (a relative ``--out``, ``VMOER_PPL_CACHE``) must hold in the worker.
    """
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    torch.set_num_threads(threads)
    torch.set_default_dtype(dtype)
    pyro.enable_validation(validation)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s [worker]: %(message)s")


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """Workers (and the forkserver) inherit ``TQDM_DISABLE=1``: several bars garble a terminal."""
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = before


def run_tasks(fn: Callable, tasks: Sequence[tuple], workers: int, what: str = "task") -> list:
    """``[fn(*args) for args in tasks]``, in ``workers`` processes; results in order.

    Parameters
    ----------
    fn : callable
        A module-level function (the workers import it by name); its arguments and
        result must pickle (use :func:`to_numpy` for tensors).
    tasks : sequence of tuple
        Positional arguments of each call, longest first for the best balance (a free worker
        takes the next task).
    workers : int
        Processes; each runs :func:`worker_threads` torch threads.
    what : str
        How the log names a task.

    Returns
    -------
    list
        ``fn``'s results, in the order of ``tasks``.
    """
    n = min(workers, len(tasks))
    threads, level = worker_threads(workers), logging.getLogger().getEffectiveLevel()
    state = (threads, level, torch.get_default_dtype(), is_validation_enabled())
    log.info("%d %ss in %d processes of %d threads", len(tasks), what, n, threads)
    with (
        _quiet_progress(),
        cf.ProcessPoolExecutor(
            n,
            mp_context=worker_context(),
            initializer=_start_worker,
            initargs=(*state, os.getcwd(), dict(os.environ)),
        ) as pool,
    ):
        futures = [pool.submit(fn, *args) for args in tasks]
        done = cf.as_completed(futures)
        try:
            for future in tqdm(done, total=len(futures), desc=f"{what}s in {n} processes"):
                future.result()  # a failed task stops the run here, with its traceback
        except BrokenProcessPool as err:
            raise RuntimeError(
                f"a worker process died during a {what} (out of memory? each of the {n} holds "
                "its own copy of the model): pass fewer --workers"
            ) from err
        finally:
            for future in futures:
                future.cancel()  # after a failure, tasks not yet started do not start
        return [f.result() for f in futures]


def to_numpy(tree):
    """Every tensor of a nested dict / list / tuple as a NumPy array (a plain pickle)."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu().numpy()
    if isinstance(tree, dict):
        return {k: to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_numpy(v) for v in tree)
    return tree


def to_torch(tree):
    """Inverse of :func:`to_numpy`: every NumPy array of a nested structure as a tensor."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(tree)
    if isinstance(tree, dict):
        return {k: to_torch(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_torch(v) for v in tree)
    return tree
