"""Random initialisation: one generator for the package, seeded by
skipblocks.manual_seed(n) (torch.manual_seed's role). The draws are
distributed as torch's default init; they are not torch's numbers -- copy
torch's weights with load_state_dict to get those."""
import numpy as np

__all__ = ["manual_seed", "uniform", "seed64"]

_generator = np.random.default_rng()


def manual_seed(seed):
    """Makes later default initialisations reproducible. Takes what
    torch.manual_seed takes: an integer (or a number, truncated by int())
    in [-2**63, 2**64); a negative seed is remapped, as torch remaps it,
    to 0xffff_ffff_ffff_ffff + seed."""
    global _generator
    seed = int(seed)
    if not -0x8000_0000_0000_0000 <= seed <= 0xFFFF_FFFF_FFFF_FFFF:
        raise ValueError(f"manual_seed: seed must be in [-0x8000_0000_0000_0000, "
                         f"0xffff_ffff_ffff_ffff], got {seed}")
    if seed < 0:
        seed = 0xFFFF_FFFF_FFFF_FFFF + seed
    _generator = np.random.default_rng(seed)
    return _generator


def uniform(low, high, shape, dtype=np.float32):
    """Samples uniform on [low, high), in ``dtype`` (float32 or float64): the
    same float64 draws either way, so a float32 and a float64 module built
    after the same seed hold the same weights, up to float32 rounding."""
    return _generator.uniform(low, high, size=shape).astype(dtype, copy=False)


# dropout
def seed64():
    """A 64-bit seed for one random operator call (dropout's mask), drawn
    from the package's generator: reproducible after manual_seed(n)."""
    return int(_generator.integers(0, 2**64, dtype=np.uint64))


# networks' initialisations (skipblocks.models)
def normal(std, shape, dtype=np.float32, low=None, high=None):
    """Samples a normal of mean 0 and standard deviation ``std`` in
    ``dtype``, as torch.nn.init.normal_ (kaiming_normal_ with its std);
    with ``low``/``high``, values outside [low, high] are drawn again, the
    distribution of torch.nn.init.trunc_normal_."""
    values = _generator.normal(0.0, std, size=shape)
    if low is not None or high is not None:
        low = -np.inf if low is None else low
        high = np.inf if high is None else high
        outside = (values < low) | (values > high)
        while outside.any():
            values[outside] = _generator.normal(0.0, std, size=int(outside.sum()))
            outside = (values < low) | (values > high)
    return values.astype(dtype, copy=False)
