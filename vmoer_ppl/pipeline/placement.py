"""Where and in which dtype the backbone runs: ``--device``, ``--dtype``, ``--device-map``.

The backbone is loaded in the chosen dtype (``auto``: the checkpoint's own) on the chosen device
(``auto``: CUDA when present, else the CPU), or spread over devices by accelerate's device map.
Router math and guides stay in float32 on each router's execution device (the adapters' job).
Before a model is loaded its size is measured on the meta device and checked against the free
memory of where it will live, so that a model that cannot fit is refused with the numbers.
"""

from __future__ import annotations

import json

import torch

from vmoer_ppl.scoring.memory import available_bytes

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> ``cuda`` when available, else ``cpu``; anything else as torch parses it.

    Raises
    ------
    ValueError
        For an unparseable device or CUDA requested on a machine without it.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"--device {device!r}: use auto, cpu, cuda or cuda:N ({err})") from None
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device here; use --device cpu (or auto)")
    return out


def resolve_dtype(dtype: str):
    """``"auto"`` (kept: the checkpoint's dtype) or a torch dtype.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if dtype == "auto":
        return "auto"
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r}: use one of {['auto', *DTYPES]}")
    return DTYPES[dtype]


def parse_device_map(device_map: str | None):
    """``None``, an accelerate strategy name, or a JSON ``{module: device}`` map.

    Raises
    ------
    ValueError
        For anything else.
    """
    if device_map is None or device_map in DEVICE_MAPS:
        return device_map
    try:
        parsed = json.loads(device_map)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(
            f"--device-map {device_map!r}: use one of {list(DEVICE_MAPS)} or a JSON object "
            'mapping module names to devices, e.g. \'{"": "cuda:0"}\''
        )
    return parsed


def load_kwargs(device: str, dtype: str, device_map: str | None) -> dict:
    """Keyword arguments of ``from_pretrained`` for these settings."""
    kw: dict = {"dtype": resolve_dtype(dtype)}
    dmap = parse_device_map(device_map)
    target = resolve_device(device)
    if dmap is not None:
        kw["device_map"] = dmap
    elif target.type != "cpu":
        kw["device_map"] = {"": str(target)}  # load straight onto the device
    return kw


def model_bytes(config, dtype) -> tuple[int, int]:
    """``(parameters, bytes)`` of a model built from ``config`` on the meta device.

    Parameters
    ----------
    config : transformers.PretrainedConfig
    dtype : torch.dtype or "auto"
        ``"auto"``: the config's ``dtype`` (float32 when it has none).
    """
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    n = sum(p.numel() for p in model.parameters())
    if dtype == "auto":
        dtype = getattr(config, "dtype", None) or torch.float32
        dtype = DTYPES.get(dtype, torch.float32) if isinstance(dtype, str) else dtype
    return n, n * torch.empty((), dtype=dtype).element_size()


def free_bytes(device: str, device_map: str | None) -> tuple[int, str]:
    """Free memory where the model will live, and its name for messages."""
    if device_map is not None and torch.cuda.is_available():
        n = torch.cuda.device_count()
        gpu = sum(torch.cuda.mem_get_info(i)[0] for i in range(n))
        return gpu + available_bytes(torch.device("cpu")), f"{n} GPU(s) and the host"
    target = resolve_device(device)
    return available_bytes(target), str(target)


def check_fits(config, device: str, dtype: str, device_map: str | None) -> str:
    """Refuse a model that cannot fit; return a one-line size report.

    Raises
    ------
    MemoryError
        With the parameter count, the bytes at the chosen dtype, the free memory and the flags.
    """
    n, need = model_bytes(config, resolve_dtype(dtype))
    free, where = free_bytes(device, device_map)
    report = f"{n / 1e9:.2f} B parameters, {need / 2**30:.1f} GiB at --dtype {dtype}"
    if need > 0.9 * free:
        raise MemoryError(
            f"the model has {report}; {free / 2**30:.1f} GiB are free on {where}: use "
            "--dtype bfloat16, --device-map auto (offloads what does not fit), or a larger device"
        )
    return f"{report}; {free / 2**30:.1f} GiB free on {where}"
