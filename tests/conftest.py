import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _pyro_state():
    """Clear the param store, enable validation, fix the seed, compute in float64."""
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
    pyro.clear_param_store()
