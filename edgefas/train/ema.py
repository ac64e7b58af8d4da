"""Exponential moving average of a model's weights, shared by every training loop."""
from __future__ import annotations

import torch


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for parameters; buffers (e.g. BatchNorm
    statistics) are copied, since averaging running statistics has no meaning."""
    # one fused call instead of a kernel launch per tensor: on a GPU the per-tensor loop of a
    # small UNet costs as much as its training step
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)
