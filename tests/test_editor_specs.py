"""What the editor reads from the engine for issue 15: log-scale floats in the spec, values of small tensors."""
from __future__ import annotations

import pytest
import torch

from nodegraph.registry import default_registry
from nodegraph.spec import Float
from nodegraph.types import summarize


def test_a_log_float_is_declared_in_the_spec_and_needs_positive_bounds():
    lr = next(p for p in default_registry().get("Optimize").params if p.name == "lr")
    assert lr.to_json()["log"] is True and lr.min > 0
    assert Float("x", 1.0).to_json()["log"] is False
    with pytest.raises(ValueError, match="0 < min < max"):
        Float("bad", 1.0, log=True, min=0.0, max=10.0)
    with pytest.raises(ValueError, match="0 < min < max"):
        Float("unbounded", 1.0, log=True, min=1e-3)


def test_small_tensors_carry_their_values_and_large_ones_only_statistics():
    small = summarize(torch.tensor([[3.0, 6.9, 2.5]]))
    assert small["values"] == [3.0, 6.9, 2.5] and small["shape"] == [1, 3]
    large = summarize(torch.zeros(4, 5))
    assert "values" not in large and large["max"] == 0.0
