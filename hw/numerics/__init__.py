"""Bit-exact integer arithmetic of the accelerator (shared by golden model and RTL tests).

Each approximation is a short sequence of integer operations on int64 NumPy arrays (shifts,
table lookups, small multiplies) that the Verilog mirrors step for step; tables are built once
from the :class:`~edgemoe.hw.config.NumericsConfig`. See docs/numerics.md for formats, rounding
rules and measured errors.

Modules: :mod:`.fixedpoint` (wrap, saturate, round_shift, requantize, quantize_multiplier),
:mod:`.exp` (exp2 of non-positive numbers), :mod:`.recip` (1/x, 1/sqrt(x)), :mod:`.softmax`
(online softmax statistics and probabilities), :mod:`.gelu`, :mod:`.layernorm`, :mod:`.gate`
(top-k and route table) and :mod:`.report` (errors against float64). Import from the
submodules (``from edgemoe.hw.numerics.softmax import softmax``); the package re-exports nothing,
so a module and its same-named function never shadow each other.
"""
