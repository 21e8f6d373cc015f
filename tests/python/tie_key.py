"""jetpipe's tie key in numpy, shared by the Python checks and benchmarks."""
import numpy as np


def tie_key(pixels: np.ndarray, n_hits: int) -> np.ndarray:
    """jetpipe's order among equal scores (`stages::pointcloud::tie_key`): a uint32 hash of
    the row-major pixel index salted with the jet's hit count."""
    p = pixels.astype(np.uint32)
    h = (p * np.uint32(0x9E3779B1)) ^ np.uint32((n_hits * 0x85EBCA77) & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    return h ^ (h >> np.uint32(15))
