"""ArviZ export of trained routers, LOO comparison across priors and families, run inspection."""

from vmoer_ppl.diagnostics.export import load_datatree, save_datatree, to_datatree
from vmoer_ppl.diagnostics.loo import loo_compare, loo_markdown

__all__ = ["load_datatree", "loo_compare", "loo_markdown", "save_datatree", "to_datatree"]
