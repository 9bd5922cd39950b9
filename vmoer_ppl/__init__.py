"""vmoer_ppl: Variational (Bayesian) MoE routing as Pyro models, guides and SVI."""

from vmoer_ppl.adapter_io import save_pretrained
from vmoer_ppl.bayesianize import bayesianize
from vmoer_ppl.families import FAMILIES, RouterFamily, as_family
from vmoer_ppl.infer import PredictMode, SVIConfig, SVIResult, fit_svi, fused_loss, predict
from vmoer_ppl.infer.tune_prior import PriorTuning, tune_prior
from vmoer_ppl.pretrained import from_pretrained
from vmoer_ppl.priors import GaussianPrior, HierarchicalGaussianPrior, Prior
from vmoer_ppl.sites import RouterSite, find_routers, select_layers

__version__ = "0.1.0"

__all__ = [
    "FAMILIES",
    "GaussianPrior",
    "HierarchicalGaussianPrior",
    "PredictMode",
    "Prior",
    "PriorTuning",
    "RouterFamily",
    "RouterSite",
    "SVIConfig",
    "SVIResult",
    "as_family",
    "bayesianize",
    "find_routers",
    "from_pretrained",
    "fit_svi",
    "fused_loss",
    "predict",
    "save_pretrained",
    "select_layers",
    "tune_prior",
]
