"""PyTorch definition of M³ViT, the multi-task Mixture-of-Experts Vision Transformer.

This is the float reference the whole toolchain is measured against: the compiler lowers it,
the golden model's fidelity report compares against :meth:`M3ViT.forward_trace`, and the ONNX
frontend reads what :func:`export_onnx` writes. The architecture follows the M³ViT model that
Edge-MoE runs (see ``/work/shared/REFERENCE.md``):

- patch embedding (Conv2d, kernel = stride = patch), class token, learned position embedding;
- pre-norm blocks: ``x + proj(MHSA(LN(x)))`` then ``x + MLP(LN(x))``, or on MoE blocks
  (the odd ones) ``x + Σ_top-k score·expert(LN(x))`` with one gate per task whose top-k softmax
  probabilities are used as scores *without* renormalisation;
- final LayerNorm and one linear head per task, applied to the patch tokens only.

Weights are initialised from a seed in a machine-independent way (:func:`build_model`), so tests,
RTL simulations and the paper-sized preset all use reproducible, non-degenerate weights when no
trained checkpoint is available.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PRESETS",
    "Attention",
    "Block",
    "M3ViT",
    "Mlp",
    "MoE",
    "ModelConfig",
    "build_model",
    "count_macs",
    "export_onnx",
    "get_config",
    "init_weights",
    "load_model",
    "preprocess",
    "save_model",
]

#: Per-channel mean and standard deviation (RGB, on [0, 1] pixels) of the model's normalisation.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Std of the (truncated at ±2σ) normal init of biases, LayerNorm offsets and embeddings.
SMALL_STD = 0.02
#: Std of LayerNorm gains around 1.
GAIN_STD = 0.1
#: Gate weights get std GATE_LOGIT_STD / sqrt(dim): with unit-variance LayerNorm outputs the gate
#: logits then have std ≈ GATE_LOGIT_STD, so softmax routing is neither uniform (all experts tie)
#: nor one-hot, and different tokens choose different experts.
GATE_LOGIT_STD = 1.5
#: Q/K/V weights get std QKV_GAIN / sqrt(dim), so attention logits have std ≈ QKV_GAIN²: peaked
#: attention as in trained ViTs rather than the near-uniform average of a std-0.02 init.
QKV_GAIN = 1.75

#: Format tag of checkpoints written by :func:`save_model`.
CHECKPOINT_FORMAT = "edgemoe.m3vit/1"


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of one M³ViT.

    ``tasks`` maps each task name to its output channels per patch token. ``moe_blocks`` lists the
    blocks whose MLP is a Mixture-of-Experts layer; left as ``None`` it becomes the odd blocks
    1, 3, 5, ... as in M³ViT.
    """

    name: str
    image_size: tuple[int, int, int]
    patch: int
    dim: int
    depth: int
    heads: int
    mlp_hidden: int
    num_experts: int
    expert_hidden: int
    top_k: int
    tasks: dict[str, int] = field(hash=False)
    ln_eps: float = 1e-6
    moe_blocks: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        object.__setattr__(self, "tasks", {str(k): int(v) for k, v in self.tasks.items()})
        blocks = range(1, self.depth, 2) if self.moe_blocks is None else self.moe_blocks
        object.__setattr__(self, "moe_blocks", tuple(sorted(int(b) for b in blocks)))
        self._validate()

    def _validate(self) -> None:
        """Reject configs no model can be built from; messages name the field at fault."""
        if len(self.image_size) != 3 or min(self.image_size) <= 0:
            raise ValueError(f"ModelConfig {self.name!r}: image_size={self.image_size} must be "
                             f"positive (C, H, W)")
        _, h, w = self.image_size
        checks = [
            (self.patch > 0 and h % self.patch == 0 and w % self.patch == 0,
             f"patch={self.patch} must divide image height {h} and width {w}"),
            (self.heads > 0 and self.dim % self.heads == 0,
             f"dim={self.dim} must be a multiple of heads={self.heads}"),
            (self.depth > 0, f"depth={self.depth} must be positive"),
            (0 < self.top_k <= self.num_experts
             or (not self.moe_blocks and self.num_experts == self.top_k == 0),
             f"top_k={self.top_k} must be in 1..num_experts={self.num_experts} "
             f"(a model without MoE blocks may have num_experts = top_k = 0)"),
            (all(0 <= b < self.depth for b in self.moe_blocks),
             f"moe_blocks={self.moe_blocks} must index blocks 0..{self.depth - 1}"),
            (len(set(self.moe_blocks)) == len(self.moe_blocks),
             f"moe_blocks={self.moe_blocks} has duplicates"),
            (bool(self.tasks) and all(v > 0 for v in self.tasks.values()),
             f"tasks={self.tasks} must map at least one task to a positive channel count"),
            (self.ln_eps > 0, f"ln_eps={self.ln_eps} must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"ModelConfig {self.name!r}: {message}")

    @property
    def grid(self) -> tuple[int, int]:
        """Patch grid (rows, columns)."""
        return self.image_size[1] // self.patch, self.image_size[2] // self.patch

    @property
    def num_patches(self) -> int:
        """Number of patch tokens (the class token excluded)."""
        rows, cols = self.grid
        return rows * cols

    @property
    def num_tokens(self) -> int:
        """Sequence length inside the blocks: patches plus the class token."""
        return self.num_patches + 1

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.dim // self.heads

    @property
    def patch_dim(self) -> int:
        """Inputs per patch (C·patch·patch): the reduction length of the patch embedding."""
        return self.image_size[0] * self.patch * self.patch

    def is_moe(self, block: int) -> bool:
        """Whether block ``block`` has a Mixture-of-Experts layer instead of a dense MLP."""
        return block in self.moe_blocks

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python form (lists and dicts only), as stored in checkpoints."""
        out = dataclasses.asdict(self)
        out["image_size"] = list(self.image_size)
        out["moe_blocks"] = list(self.moe_blocks)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown or missing fields raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing_default = dataclasses.MISSING
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is missing_default and f.default_factory is missing_default}
        unknown = sorted(set(data) - names)
        missing = sorted(required - set(data))
        if unknown or missing:
            raise ValueError(f"model config: unknown fields {unknown}, missing fields {missing}")
        values = dict(data)
        if values.get("moe_blocks") is not None:
            values["moe_blocks"] = tuple(values["moe_blocks"])
        values["image_size"] = tuple(values["image_size"])
        return cls(**values)


_TASKS = {"seg": 19, "depth": 1}

#: Built-in model sizes. ``edge-moe`` is the model Edge-MoE runs; ``tiny`` is for fast tests
#: and RTL simulation.
PRESETS: dict[str, ModelConfig] = {
    "edge-moe": ModelConfig(
        name="edge-moe", image_size=(3, 128, 256), patch=16, dim=192, depth=12, heads=3,
        mlp_hidden=768, num_experts=16, expert_hidden=384, top_k=2, tasks=_TASKS,
    ),
    "m3vit-small": ModelConfig(
        name="m3vit-small", image_size=(3, 224, 224), patch=16, dim=384, depth=12, heads=6,
        mlp_hidden=1536, num_experts=16, expert_hidden=768, top_k=2, tasks=_TASKS,
    ),
    "tiny": ModelConfig(
        name="tiny", image_size=(3, 32, 32), patch=8, dim=32, depth=2, heads=2,
        mlp_hidden=64, num_experts=4, expert_hidden=32, top_k=2, tasks=_TASKS,
    ),
}


def get_config(preset: str | ModelConfig) -> ModelConfig:
    """The config of a preset name (or the config itself); unknown names list the valid ones."""
    if isinstance(preset, ModelConfig):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown model preset {preset!r}; known: {sorted(PRESETS)}") from None


# --------------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------------

#: Named intermediates collected by :meth:`M3ViT.forward_trace`, or None when not tracing.
Trace = dict[str, Tensor] | None


class Attention(nn.Module):
    """Multi-head self-attention with one fused QKV projection.

    ``qkv`` output columns are ``[q | k | v]``; within each, head ``h`` owns the contiguous
    columns ``h·head_dim .. (h+1)·head_dim - 1``. The compiler relies on this layout.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each [B, heads, N, head_dim]
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.head_dim**-0.5, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Mlp(nn.Module):
    """fc1 → exact (erf) GELU → fc2: the dense MLP and, with its own sizes, each expert."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MoE(nn.Module):
    """Task-gated sparse Mixture-of-Experts layer (the residual is added by the block).

    Each token is routed to the ``top_k`` experts with the highest softmax probability of the
    task's gate; the expert outputs are weighted by those probabilities (not renormalised) and
    summed. The computation is written the way the hardware does it: per expert, gather the
    tokens routed to it, run the expert once over them, and scatter-add the score-weighted
    result. Experts are visited in index order, so each token's sum is accumulated in
    ascending expert order.
    """

    def __init__(self, dim: int, hidden: int, num_experts: int, top_k: int,
                 tasks: Mapping[str, int]) -> None:
        super().__init__()
        self.top_k = top_k
        self.gates = nn.ModuleDict({task: nn.Linear(dim, num_experts) for task in tasks})
        self.experts = nn.ModuleList(Mlp(dim, hidden) for _ in range(num_experts))

    def route(self, tokens: Tensor, task: str) -> tuple[Tensor, Tensor, Tensor]:
        """Gate logits [T, E], top-k expert indices [T, k] and their scores [T, k]."""
        logits = self.gates[task](tokens)
        scores, experts = torch.softmax(logits, dim=-1).topk(self.top_k, dim=-1)
        return logits, experts, scores

    def forward(self, x: Tensor, task: str, trace: Trace = None, prefix: str = "") -> Tensor:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        logits, experts, scores = self.route(tokens, task)
        out = torch.zeros_like(tokens)
        for index, expert in enumerate(self.experts):
            token, slot = torch.nonzero(experts == index, as_tuple=True)
            weighted = expert(tokens[token]) * scores[token, slot].unsqueeze(-1)
            out = out.index_add(0, token, weighted)
        if trace is not None:
            trace[f"{prefix}.gate_logits"] = logits
            trace[f"{prefix}.route"] = experts
            trace[f"{prefix}.scores"] = scores
        return out.reshape(shape)


class Block(nn.Module):
    """Pre-norm transformer block; its MLP is dense (``mlp``) or Mixture-of-Experts (``moe``)."""

    def __init__(self, config: ModelConfig, moe: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim, eps=config.ln_eps)
        self.attn = Attention(config.dim, config.heads)
        self.norm2 = nn.LayerNorm(config.dim, eps=config.ln_eps)
        self.mlp: Mlp | None = None
        self.moe: MoE | None = None
        if moe:
            self.moe = MoE(config.dim, config.expert_hidden, config.num_experts, config.top_k,
                           config.tasks)
        else:
            self.mlp = Mlp(config.dim, config.mlp_hidden)

    def forward(self, x: Tensor, task: str, trace: Trace = None, prefix: str = "") -> Tensor:
        x = x + self.attn(self.norm1(x))
        if trace is not None:
            trace[f"{prefix}.attn"] = x
        if self.moe is not None:
            x = x + self.moe(self.norm2(x), task, trace, prefix)
        elif self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        if trace is not None:
            trace[f"{prefix}.mlp"] = x
        return x


class M3ViT(nn.Module):
    """The multi-task MoE ViT. ``forward(x, task)`` maps [B, C, H, W] to [B, patches, channels].

    State-dict keys: ``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks.<i>.{norm1, attn.qkv,
    attn.proj, norm2}``, then ``blocks.<i>.mlp.{fc1, fc2}`` on dense blocks or
    ``blocks.<i>.moe.gates.<task>`` and ``blocks.<i>.moe.experts.<e>.{fc1, fc2}`` on MoE blocks,
    ``norm`` and ``heads.<task>``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = nn.Conv2d(config.image_size[0], config.dim, config.patch,
                                     stride=config.patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_tokens, config.dim))
        self.blocks = nn.ModuleList(Block(config, config.is_moe(i)) for i in range(config.depth))
        self.norm = nn.LayerNorm(config.dim, eps=config.ln_eps)
        self.heads = nn.ModuleDict({task: nn.Linear(config.dim, channels)
                                    for task, channels in config.tasks.items()})

    def forward(self, x: Tensor, task: str) -> Tensor:
        """Task output per patch token, [B, num_patches, channels of ``task``]."""
        return self._run(x, task, None)

    def forward_trace(self, x: Tensor, task: str) -> tuple[Tensor, dict[str, Tensor]]:
        """Output plus named intermediates for fidelity comparison.

        Names: ``embed`` (tokens after class token and position embedding, [B, N, D]);
        ``block<i>.attn`` and ``block<i>.mlp`` (after each residual add, [B, N, D]); on MoE
        blocks ``block<i>.gate_logits``, ``block<i>.route`` (chosen experts, int64) and
        ``block<i>.scores`` (their probabilities), each over the flattened B·N tokens:
        [B·N, E], [B·N, k], [B·N, k]; ``norm`` (final LayerNorm output, [B, N, D]) and
        ``output`` (the task head on the patch tokens).
        """
        trace: dict[str, Tensor] = {}
        out = self._run(x, task, trace)
        return out, trace

    def _run(self, x: Tensor, task: str, trace: Trace) -> Tensor:
        self._check_input(x, task)
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # [B, patches, D], row-major
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        h = torch.cat([cls, patches], dim=1) + self.pos_embed
        if trace is not None:
            trace["embed"] = h
        for index, block in enumerate(self.blocks):
            h = block(h, task, trace, f"block{index}")
        h = self.norm(h)
        out = self.heads[task](h[:, 1:])
        if trace is not None:
            trace["norm"] = h
            trace["output"] = out
        return out

    def _check_input(self, x: Tensor, task: str) -> None:
        """Fail early with a message naming the task or the expected shape."""
        if task not in self.config.tasks:
            raise ValueError(f"unknown task {task!r}; model {self.config.name!r} has "
                             f"{sorted(self.config.tasks)}")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.config.image_size:
            raise ValueError(f"input shape {tuple(x.shape)} does not match [B, "
                             f"{', '.join(map(str, self.config.image_size))}] of model "
                             f"{self.config.name!r}")


# --------------------------------------------------------------------------------------------
# Deterministic initialisation
# --------------------------------------------------------------------------------------------


def _generator(seed: int, name: str) -> torch.Generator:
    """A generator private to one parameter, so adding a task or block leaves the others as
    they were and the order of initialisation does not matter."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _trunc_normal(shape: torch.Size, std: float, generator: torch.Generator) -> Tensor:
    """Normal(0, std²) truncated to ±2σ, by inverse CDF in float64 then rounded to float32.

    Drawing uniforms (exact) and transforming in float64 makes the float32 result the same on
    every machine even if vectorised libm routines differ in the last bit.
    """
    low = 0.5 * math.erfc(math.sqrt(2.0))  # Φ(-2)
    u = torch.rand(shape, generator=generator, dtype=torch.float64)
    z = torch.special.ndtri(u.mul_(1.0 - 2.0 * low).add_(low))
    return z.mul_(std).to(torch.float32)


def _init_value(name: str, param: Tensor, depth: int, seed: int) -> Tensor:
    """The initial value of one named parameter (see :func:`init_weights`)."""
    generator = _generator(seed, name)
    if name.endswith(".bias") or name in ("cls_token", "pos_embed"):
        return _trunc_normal(param.shape, SMALL_STD, generator)
    if param.dim() == 1:  # LayerNorm gains
        return 1.0 + _trunc_normal(param.shape, GAIN_STD, generator)
    return _trunc_normal(param.shape, _weight_gain(name, depth) / math.sqrt(param[0].numel()),
                         generator)


def _weight_gain(name: str, depth: int) -> float:
    """Std multiplier of a weight over 1/sqrt(fan_in)."""
    if ".gates." in name:
        return GATE_LOGIT_STD
    if name.endswith("attn.qkv.weight"):
        return QKV_GAIN
    if name.endswith(("attn.proj.weight", "fc2.weight")):  # writes into the residual stream
        return 1.0 / math.sqrt(depth)
    return 1.0


def init_weights(model: M3ViT, seed: int = 0) -> None:
    """Seeded, machine-independent initialisation of every parameter.

    Weights are trunc-normal with std gain/sqrt(fan_in), so activations stay near unit scale
    (M3ViT has no published weights, and a plain std-0.02 init gives near-uniform attention and
    blocks that barely change the residual stream, which would make fidelity tests too easy):

    - Q/K/V gain QKV_GAIN: attention logits have std ≈ QKV_GAIN² ≈ 3, so attention is peaked;
    - attention proj, MLP fc2 and expert fc2 (the layers that write into the residual stream)
      gain 1/sqrt(depth): each block changes the stream by roughly 5-20 % and tokens stay
      distinct through all blocks, so deep gates still spread tokens over many experts;
    - gate gain GATE_LOGIT_STD: routing is neither uniform nor one-hot.

    Biases, LayerNorm offsets, the class token and the position embedding are small but non-zero
    and LayerNorm gains scatter around 1, so a hardware path that dropped a bias or an affine
    term shows up in a comparison instead of hiding behind zeros.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(_init_value(name, param, model.config.depth, seed))


def build_model(preset: str | ModelConfig, seed: int = 0) -> M3ViT:
    """A seeded M³ViT of a preset name or config, in eval mode."""
    model = M3ViT(get_config(preset))
    init_weights(model, seed)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def _atomic_path(path: Path) -> Path:
    """A temporary file beside ``path``, renamed over it only once fully written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def save_model(model: M3ViT, path: str | os.PathLike[str]) -> Path:
    """Write ``{"format", "config", "state_dict"}`` to ``path`` (atomically); returns the path."""
    path = Path(path)
    tmp = _atomic_path(path)
    try:
        torch.save({"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(),
                    "state_dict": model.state_dict()}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _describe(value: object) -> str:
    """Shape of a tensor, or the type of anything else, for error messages."""
    return str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__


def _check_state_dict(model: M3ViT, state: Mapping[str, Any], source: str) -> None:
    """Raise ``ValueError`` naming every missing key, unexpected key and shape mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: checkpoint {_describe(state[k])} vs model {_describe(expected[k])}"
             for k in sorted(set(expected) & set(state))
             if not isinstance(state[k], Tensor) or state[k].shape != expected[k].shape]
    groups = {"missing keys": missing, "unexpected keys": unexpected, "shape mismatches": wrong}
    detail = "; ".join(f"{label} ({len(items)}): {', '.join(items)}"
                       for label, items in groups.items() if items)
    if detail:
        raise ValueError(f"{source} does not fit model {model.config.name!r}: {detail}")


def load_model(path: str | os.PathLike[str], preset: str | ModelConfig | None = None) -> M3ViT:
    """Load a model from a ``.pt`` file, in eval mode.

    The file is either a checkpoint written by :func:`save_model` (its config is used; a
    ``preset`` given as well must agree with it) or a plain state_dict, which needs ``preset``.
    Key or shape mismatches raise ``ValueError`` listing them.
    """
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({error})") from error
    if not isinstance(data, Mapping):  # the file's content is at fault, not an argument
        raise ValueError(  # noqa: TRY004
            f"{path}: expected a checkpoint or state_dict mapping, got {type(data).__name__}")
    if "state_dict" in data and "config" in data:
        config = ModelConfig.from_dict(data["config"])
        if preset is not None and get_config(preset) != config:
            raise ValueError(f"{path}: checkpoint config {config.name!r} differs from the "
                             f"requested preset {get_config(preset).name!r}")
        state = data["state_dict"]
    elif preset is None:
        raise ValueError(f"{path}: a plain state_dict carries no config; pass a preset "
                         f"(one of {sorted(PRESETS)}) or a ModelConfig")
    else:
        config, state = get_config(preset), data
    model = M3ViT(config)
    _check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    return model.eval()


# --------------------------------------------------------------------------------------------
# Preprocessing, ONNX export, work count
# --------------------------------------------------------------------------------------------


def preprocess(image: np.ndarray, config: str | ModelConfig) -> Tensor:
    """The model's own preprocessing: HxWx3 uint8 RGB image (any size) → float [1, C, H, W].

    Scales pixels to [0, 1], resizes to the model's input size (bilinear, antialiased, so
    downscaling does not alias) and normalises with the ImageNet mean and std.
    """
    config = get_config(config)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"preprocess expects an HxWx3 uint8 image, got shape {image.shape} "
                         f"dtype {image.dtype}")
    pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    resized = F.interpolate(pixels, size=config.image_size[1:], mode="bilinear",
                            align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (resized - mean) / std


class _SingleTask(nn.Module):
    """Wraps the model with the task fixed, since an ONNX graph has tensor inputs only."""

    def __init__(self, model: M3ViT, task: str) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, self.task)


def export_onnx(model: M3ViT, task: str, path: str | os.PathLike[str], opset: int = 17) -> Path:
    """Export one task of ``model`` to a self-contained ONNX file, batch fixed to 1.

    The graph has one input ``image`` [1, C, H, W] (preprocessed float32, see
    :func:`preprocess`) and one output named after the task, [1, num_patches, channels]. The MoE
    routing stays data dependent in the graph (TopK, then per expert Equal → NonZero → Gather →
    expert → score multiply → scatter-add).

    The TorchScript exporter (``dynamo=False``) is used: it exports ``edge-moe`` in about 10 s and
    names nodes after the module path (``/model/blocks.1/moe/experts.0/fc1/Gemm``). The
    torch.export-based exporter of torch 2.13 also handles the data-dependent routing, but took
    about two minutes for ``edge-moe``, builds opset 18 and converts down through a fallback, and
    gives nodes generic names.

    The model config (as JSON) and the task are stored in the file's metadata_props, so the ONNX
    frontend recovers the name and sizes exactly.
    """
    config = model.config
    if task not in config.tasks:
        raise ValueError(f"unknown task {task!r}; model {config.name!r} has {sorted(config.tasks)}")
    path = Path(path)
    dummy = torch.zeros(1, *config.image_size)
    tmp = _atomic_path(path)
    try:
        with warnings.catch_warnings():
            # The input check reads shapes as Python values (fine: the batch is fixed), and the
            # MoE gathers/scatters use NonZero indices, which are never negative and never repeat
            # within one expert, so the exporter's warnings about those cases do not apply. The
            # TorchScript exporter's deprecation notice is about a choice made above.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*(negative values|duplicated values).*")
            torch.onnx.export(_SingleTask(model, task).eval(), (dummy,), str(tmp), dynamo=False,
                              input_names=["image"], output_names=[task], opset_version=opset)
        _write_onnx_metadata(tmp, config, task)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_onnx_metadata(path: Path, config: ModelConfig, task: str) -> None:
    """Store ``config`` and ``task`` in the metadata_props of the ONNX file at ``path``."""
    import json

    import onnx

    from .frontend_onnx import META_MODEL, META_TASK

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {META_MODEL: json.dumps(config.to_dict()), META_TASK: task})
    onnx.save(proto, str(path))


def count_macs(config: str | ModelConfig, task: str,
               experts_per_token: int | None = None) -> dict[str, int]:
    """Multiply-accumulates per frame (batch 1) of one task, per layer type.

    Keys: ``patch_embed``, ``qkv``, ``proj``, ``attn_scores`` (QKᵀ), ``attn_values``
    (attention×V), ``mlp`` (dense blocks), ``gate``, ``experts`` (MoE blocks, each token through
    ``experts_per_token`` experts, default ``top_k``), ``head``; ``backbone`` (everything but the
    head: the figure Edge-MoE reports) and ``total``.
    """
    config = get_config(config)
    if task not in config.tasks:
        raise ValueError(f"unknown task {task!r}; model {config.name!r} has {sorted(config.tasks)}")
    k = config.top_k if experts_per_token is None else experts_per_token
    if not 0 <= k <= config.num_experts:
        raise ValueError(f"experts_per_token={k} must be in 0..{config.num_experts}")
    n, d, moe = config.num_tokens, config.dim, len(config.moe_blocks)
    dense = config.depth - moe
    macs = {
        "patch_embed": config.num_patches * config.patch_dim * d,
        "qkv": config.depth * n * d * 3 * d,
        "proj": config.depth * n * d * d,
        "attn_scores": config.depth * n * n * d,
        "attn_values": config.depth * n * n * d,
        "mlp": dense * n * 2 * d * config.mlp_hidden,
        "gate": moe * n * d * config.num_experts,
        "experts": moe * n * k * 2 * d * config.expert_hidden,
        "head": config.num_patches * d * config.tasks[task],
    }
    macs["backbone"] = sum(v for key, v in macs.items() if key != "head")
    macs["total"] = macs["backbone"] + macs["head"]
    return macs
