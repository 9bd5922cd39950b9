"""Router adapters on the Hugging Face Hub: ``guide.push_to_hub``, ``from_pretrained(net, repo)``.

Built on ``huggingface_hub``: pushing saves the adapter (safetensors + JSON, nothing executable)
and a generated model card into a temporary folder and uploads it with ``HfApi.upload_folder``;
loading by repo id downloads only the adapter's two data files and its card with
``snapshot_download`` (which honours ``HF_HUB_OFFLINE`` and a local cache in the hub layout) and
then checks them exactly as a local adapter is checked.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from vmoer_ppl.adapter_io import CONFIG_NAME, WEIGHTS_NAME, save_pretrained

CARD_NAME = "README.md"


def is_repo_id(name: str | Path) -> bool:
    """Whether ``name`` is a hub repo id (``owner/name``) rather than an existing local path."""
    text = str(name)
    return not Path(text).exists() and text.count("/") == 1 and not text.startswith((".", "/"))


def resolve_adapter(
    name: str | Path, *, revision: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """A local adapter directory: ``name`` itself, or the hub snapshot of repo id ``name``.

    Parameters
    ----------
    name : str or Path
        A directory written by ``save_pretrained`` or a hub repo id ``owner/name``.
    revision : str, optional
        Branch, tag or commit of the hub repo.
    cache_dir : str or Path, optional
        The hub cache (default: ``huggingface_hub``'s).

    Returns
    -------
    Path
    """
    if not is_repo_id(name):
        return Path(name)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(
            str(name),
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME],
        )
    except LocalEntryNotFoundError as err:
        raise FileNotFoundError(
            f"{name}: not in the local hub cache and the hub cannot be reached ({err}); "
            "download it on a connected machine or pass a local adapter directory"
        ) from None
    return Path(path)


def model_card(config: dict, *, base_model: str | None = None, metrics: dict | None = None) -> str:
    """A model card (YAML front matter + markdown) for an adapter's JSON config.

    Parameters
    ----------
    config : dict
        The adapter's ``router_adapter.json``.
    base_model : str, optional
        The backbone's hub id or path.
    metrics : dict, optional
        Router name -> ``{metric: value}``, e.g. a run's ID results; shown as a table.

    Returns
    -------
    str
    """
    front = ["---", "library_name: vmoer_ppl", "tags:", "- mixture-of-experts", "- bayesian"]
    front += ["- variational-routing"] + ([f"base_model: {base_model}"] if base_model else [])
    routers = config["routers"]
    lines = [
        *front,
        "---",
        "",
        f"# VMoER router adapter ({config['family']})",
        "",
        "Bayesian routers (variational routing, arXiv 2603.09453) fitted with vmoer_ppl on a "
        "frozen Mixture-of-Experts model; only the routers are Bayesian.",
        "",
        "| setting | value |",
        "|---|---|",
        f"| base model | {base_model or config['architecture']} |",
        f"| architecture | {config['architecture']} |",
        f"| Bayesian routers | {len(routers)} of {config['num_routers']} |",
        f"| experts E, top-K | {routers[0]['num_experts']}, {routers[0]['top_k']} |",
        f"| family | {config['family']} |",
        f"| prior | `{json.dumps(config['prior'], sort_keys=True)}` |",
        f"| β (KL weight) | {config['beta']} |",
        "",
        "```python",
        "import vmoer_ppl",
        "model, guide = vmoer_ppl.from_pretrained(net, REPO_ID)  # net: the same base model",
        "```",
    ]
    if metrics:
        names = sorted({k for m in metrics.values() for k in m})
        lines += ["", "## Metrics", "", "| router | " + " | ".join(names) + " |"]
        lines += ["|---" * (len(names) + 1) + "|"]
        for router, m in metrics.items():
            cells = [
                f"{m[k]:.3f}" if isinstance(m.get(k), float) else str(m.get(k, "")) for k in names
            ]
            lines.append(f"| {router} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def push_to_hub(
    guide,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload VMoER router adapter",
    metrics: dict | None = None,
):
    """Upload a guide's adapter and a generated model card to a hub repo (created if missing).

    Parameters
    ----------
    guide : RouterGuide
        A trained guide.
    repo_id : str
        ``owner/name``.
    private : bool, optional
        Visibility of a new repo.
    token : str, optional
        Hub token (default: the logged-in one).
    commit_message : str
        The commit's message.
    metrics : dict, optional
        Router name -> ``{metric: value}`` for the card.

    Returns
    -------
    huggingface_hub.CommitInfo
    """
    from huggingface_hub import HfApi

    net = guide.model.net
    config = getattr(getattr(net, "model", net), "config", None)
    base = getattr(config, "_name_or_path", None) or None
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(guide, tmp)
        config = json.loads((Path(tmp) / CONFIG_NAME).read_text())
        card = model_card(config, base_model=base, metrics=metrics).replace(
            "REPO_ID", f"{repo_id!r}"
        )
        (Path(tmp) / CARD_NAME).write_text(card, encoding="utf-8")
        api.create_repo(repo_id, private=private, exist_ok=True)
        return api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
