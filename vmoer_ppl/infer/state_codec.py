"""Nested training state as data only: tensors for safetensors, everything else as JSON.

A checkpoint holds state dicts, optimiser states (integer keys), histories (tuples), NumPy and
Python RNG states (arrays, tuples). :func:`encode` splits such a structure into a JSON-able tree
and a flat ``{name: tensor}`` mapping; :func:`decode` rebuilds it with the same types. Nothing
is unpickled or executed on the way back: the only constructors are ``dict``, ``list``,
``tuple``, numbers, strings and tensors read by safetensors.

Markers in the JSON tree: ``{"__tensor__": name}``, ``{"__ndarray__": name}``,
``{"__tuple__": [...]}``, ``{"__items__": [[key, value], ...]}`` (a dict whose keys are not all
strings).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MARKERS = ("__tensor__", "__ndarray__", "__tuple__", "__items__")


def encode(obj: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``obj`` into a JSON-able tree and its tensors.

    Parameters
    ----------
    obj : Any
        Dicts, lists, tuples, ``None``, bools, ints, floats, strings, tensors and NumPy arrays.

    Returns
    -------
    tuple
        ``(tree, tensors)``: the tree refers to tensors by name (``"t0"``, ``"t1"``, ...).

    Raises
    ------
    TypeError
        For any other type (named), so that nothing is stored that cannot be read back as data.
    """
    tensors: dict[str, torch.Tensor] = {}

    def put(t: torch.Tensor) -> str:
        name = f"t{len(tensors)}"
        tensors[name] = t.detach().cpu().contiguous().clone()
        return name

    def walk(x):
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, torch.Tensor):
            return {"__tensor__": put(x)}
        if isinstance(x, np.ndarray):
            return {"__ndarray__": put(torch.from_numpy(np.ascontiguousarray(x)))}
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, dict):
            if all(isinstance(k, str) and k not in MARKERS for k in x):
                return {k: walk(v) for k, v in x.items()}
            return {"__items__": [[walk(k), walk(v)] for k, v in x.items()]}
        raise TypeError(f"cannot store a {type(x).__name__} in a data-only checkpoint")

    return walk(obj), tensors


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Rebuild the structure :func:`encode` split.

    Parameters
    ----------
    tree : Any
        The JSON tree.
    tensors : dict of str to torch.Tensor
        The tensors it names.

    Returns
    -------
    Any

    Raises
    ------
    ValueError
        If the tree names a tensor that is missing.
    """

    def tensor(name: str) -> torch.Tensor:
        if name not in tensors:
            raise ValueError(f"the checkpoint names tensor {name!r}, which it does not contain")
        return tensors[name]

    def walk(x):
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            return x
        if "__tensor__" in x:
            return tensor(x["__tensor__"])
        if "__ndarray__" in x:
            return tensor(x["__ndarray__"]).numpy()
        if "__tuple__" in x:
            return tuple(walk(v) for v in x["__tuple__"])
        if "__items__" in x:
            return {walk(k): walk(v) for k, v in x["__items__"]}
        return {k: walk(v) for k, v in x.items()}

    return walk(tree)
