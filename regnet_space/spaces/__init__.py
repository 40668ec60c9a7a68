"""Layer 2, spaces: design spaces as data (built-in and TOML-defined), sampled reproducibly under complexity
windows. May import ``models`` only (and ``errors``/``userfiles``); never torch.

    space = load_space("anynetx_a")            # or a path to a TOML file (docs/spaces.md)
    models = sample_models(space, 100, seed=0, windows={"flops": parse_window("360M:400M")})
"""

from .distributions import Distribution
from .sampling import SampledModel, sample_models
from .space import DesignSpace, builtin_spaces, load_space
from .windows import parse_window

__all__ = ["DesignSpace", "Distribution", "SampledModel", "builtin_spaces", "load_space", "parse_window",
           "sample_models"]
