"""Random initialisation: one generator for the package, seeded by
skipblocks.manual_seed(n) (torch.manual_seed's role). The draws are
distributed as torch's default init; they are not torch's numbers -- copy
torch's weights with load_state_dict to get those."""
import numpy as np

__all__ = ["manual_seed", "uniform"]

_generator = np.random.default_rng()


def manual_seed(seed):
    """Makes later default initialisations reproducible."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def uniform(low, high, shape):
    """float32 samples, uniform on [low, high)."""
    return _generator.uniform(low, high, size=shape).astype(np.float32)
