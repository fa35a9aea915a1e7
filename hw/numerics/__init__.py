"""Bit-exact integer arithmetic of the accelerator (shared by golden model and RTL tests).

Each approximation is a short sequence of integer operations on int64 NumPy arrays (shifts,
table lookups, small multiplies) that the Verilog mirrors step for step; tables are built once
from the :class:`~edgemoe.hw.config.NumericsConfig`. See docs/numerics.md for formats, rounding
rules and measured errors.

Modules: :mod:`.fixedpoint` (wrap, saturate, round_shift, requantize, quantize_multiplier),
:mod:`.exp` (exp2 of non-positive numbers), :mod:`.recip` (1/x, 1/sqrt(x)), :mod:`.softmax`
(online softmax statistics and probabilities), :mod:`.gelu`, :mod:`.layernorm`, :mod:`.gate`
(top-k and route table) and :mod:`.report` (errors against float64).
"""

from .exp import exp2_neg, exp2_table
from .fixedpoint import (
    dequantize,
    quantize,
    quantize_multiplier,
    requantize,
    round_shift,
    saturate,
    wrap,
)
from .gate import gate_topk, route_table
from .gelu import gelu, gelu_table
from .layernorm import layernorm, layernorm_params
from .recip import recip_seed_table, reciprocal, rsqrt, rsqrt_seed_table
from .softmax import (
    SoftmaxStats,
    online_softmax_stats,
    pack_stats,
    softmax,
    softmax_probs,
    unpack_stats,
)

__all__ = [
    "SoftmaxStats",
    "dequantize",
    "exp2_neg",
    "exp2_table",
    "gate_topk",
    "gelu",
    "gelu_table",
    "layernorm",
    "layernorm_params",
    "online_softmax_stats",
    "pack_stats",
    "quantize",
    "quantize_multiplier",
    "recip_seed_table",
    "reciprocal",
    "requantize",
    "round_shift",
    "route_table",
    "rsqrt",
    "rsqrt_seed_table",
    "saturate",
    "softmax",
    "softmax_probs",
    "unpack_stats",
    "wrap",
]
