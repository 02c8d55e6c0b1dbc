"""Several independently initialised nets in one module, read by averaging their class probabilities.

``model.members: K`` (torch models) wraps ``model.net`` in :class:`Ensemble`: K copies of the net, each
with its own initial weights, BatchNorm statistics and dropout, trained in the same Lightning run on the
same batches, each by its own loss (:meth:`Ensemble.member_logits`). Its output is the log of the
members' mean softmax, so everything that reads a net's logits through a softmax — the test and eval
metrics, ``glyphlab predict``, the served pyfunc, the draw page — gets the averaged probabilities
without knowing it holds more than one net. Why: on real handwriting a single seed's accuracy moves by
±1–2 points; the average of several reads better than the typical member (experiments/synth_to_real).
"""
from __future__ import annotations

import importlib
import math

import torch
from torch import nn


class Ensemble(nn.Module):
    """``members`` nets of class ``member`` (a dotted path), each built with ``kwargs``.

    ``forward`` returns ``log(mean_k softmax(net_k(x)))``: ``[B, C]`` (or ``[B, P, C]``), a valid logit
    for softmax and cross-entropy (its softmax is the mean probability itself). The members are built
    one after the other from torch's RNG, so they start from different weights and a seed fixes them all.
    """

    def __init__(self, member: str, members: int, **kwargs):
        super().__init__()
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"members must be an integer of at least 1, got {members!r}")
        module, _, name = member.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        self.nets = nn.ModuleList(cls(**kwargs) for _ in range(members))
        # the members' own attributes that callers read (e.g. CNN.n_classes), from the first
        self.n_classes = getattr(self.nets[0], "n_classes", None)
        self.n_positions = getattr(self.nets[0], "n_positions", 1)

    def member_logits(self, x) -> torch.Tensor:
        """Every member's own logits, stacked: ``[K, B, C]`` (or ``[K, B, P, C]``). ``x``: one batch for
        all members, or a sequence of K batches, one (differently augmented) view per member."""
        if isinstance(x, torch.Tensor):
            return torch.stack([net(x) for net in self.nets])
        return torch.stack([net(v) for net, v in zip(self.nets, x, strict=True)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.member_logits(x)
        # log of the mean probability, computed in log space (no underflow for confident members)
        return torch.logsumexp(torch.log_softmax(logits.float(), dim=-1), dim=0) - math.log(len(self.nets))
