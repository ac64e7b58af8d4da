"""The preprocessing contract: the table lookup equals the per-pixel formula exactly."""
from __future__ import annotations

import numpy as np
import pytest

from edgefas.runtime.preprocess import Contract, to_tensor


def _formula(crops_bgr: np.ndarray, c: Contract) -> np.ndarray:
    """The contract written out per pixel, as training code and exports assume it."""
    x = crops_bgr[..., ::-1] if c.color_order == "rgb" else crops_bgr
    lo, hi = c.value_range
    x = x.astype(np.float32) * ((hi - lo) / 255.0) + lo
    x = (x - np.asarray(c.mean, np.float32)) / np.asarray(c.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if c.layout == "NCHW" else x)


CONTRACTS = [
    Contract(),
    Contract(color_order="bgr"),
    Contract(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    Contract(value_range=(-1.0, 1.0), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    Contract(layout="NHWC"),
]


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: f"{c.color_order}-{c.layout}-{c.mean[0]}")
def test_lookup_equals_formula_bit_for_bit(contract):
    rng = np.random.default_rng(0)
    levels = np.arange(256, dtype=np.uint8)
    every_level = np.stack([levels, levels[::-1], np.roll(levels, 7)], -1).reshape(1, 16, 16, 3)
    for crops in (every_level, rng.integers(0, 256, (3, 20, 12, 3), dtype=np.uint8)):
        got, want = to_tensor(crops, contract), _formula(crops, contract)
        assert got.dtype == np.float32 and got.shape == want.shape and got.flags.c_contiguous
        assert np.array_equal(got, want)


def test_colour_order_is_applied():
    crop = np.zeros((1, 2, 2, 3), np.uint8)
    crop[..., 2] = 255  # pure red in BGR
    x = to_tensor(crop, Contract())
    assert (x[0, 0] == 1.0).all() and (x[0, 1:] == -1.0).all()  # RGB: red first


def test_non_uint8_and_hand_built_contracts_use_the_formula():
    floats = np.random.default_rng(1).uniform(0, 255, (2, 5, 5, 3)).astype(np.float32)
    assert np.array_equal(to_tensor(floats, Contract()), _formula(floats, Contract()))
    listy = Contract(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])  # unhashable: no table cache
    crops = np.full((1, 4, 4, 3), 200, np.uint8)
    assert np.array_equal(to_tensor(crops, listy), _formula(crops, Contract()))
