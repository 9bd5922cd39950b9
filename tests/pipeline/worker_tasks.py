"""Module-level tasks for ``run_tasks`` tests (a spawned worker imports them by name)."""

import os

import torch


def threads_and_dtype(x: float) -> tuple:
    """What the worker was started with, and its argument back."""
    return torch.get_num_threads(), str(torch.get_default_dtype()), x


def dies(_: int) -> None:
    """A worker killed mid-task (as the out-of-memory killer would)."""
    os._exit(1)


def where(name: str) -> tuple:
    """The worker's directory and one variable of its environment."""
    return os.getcwd(), os.environ.get(name)
