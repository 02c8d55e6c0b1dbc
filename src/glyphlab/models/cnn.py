"""A small CNN: convolution blocks with BatchNorm, then a dense head."""
import torch
from torch import nn


class CNN(nn.Module):
    """``len(channels)`` blocks of (conv → BatchNorm → ReLU) × ``convs_per_block`` → 2×2 max-pool,
    then flatten → Linear(hidden) → ReLU → Dropout → Linear(logits).

    Input float ``[B, 1, H, W]`` in 0..1 (H = W = image_size); each block halves H and W while they are
    at least 2 px; a block that meets a 1 px map keeps it (the default four blocks take 32 px to 2, 8 px to 1).
    Output ``[B, n_classes]``, or ``[B, n_positions, n_classes]`` for position-wise labels
    (the flattened feature map keeps where things are, which the position heads need).
    """

    def __init__(self, image_size: int, n_classes: int, channels=(32, 64), kernel_size: int = 3,
                 hidden: int = 128, dropout: float = 0.25, n_positions: int = 1, convs_per_block: int = 1):
        super().__init__()
        self.n_classes, self.n_positions = n_classes, n_positions
        if convs_per_block < 1:
            raise ValueError(f"convs_per_block must be at least 1, got {convs_per_block}")
        if image_size < 1:
            raise ValueError(f"image_size must be at least 1, got {image_size}")
        blocks, in_ch, size = [], 1, image_size
        for out_ch in channels:
            for _ in range(convs_per_block):
                blocks += [nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
                           nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
                in_ch = out_ch
            if size >= 2:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
        self.features = nn.Sequential(*blocks)
        # `hidden` units per label position: each position's head needs its own room (5-digit numbers
        # read through shared units lose whole-number accuracy, experiments/digit_sequence); one
        # position = the plain classifier.
        width = hidden * n_positions
        self.head = nn.Sequential(
            nn.Flatten(),                                   # [B, C, s, s] → [B, C·s·s]
            nn.Linear(in_ch * size * size, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, n_positions * n_classes),
        )
        # Conv weights in channels_last (NHWC) memory: oneDNN's CPU convolutions run the training
        # step faster so (BENCHMARKS.md, fastpaths). Values and state_dict keys are unchanged; only
        # the strides differ.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))
        return logits if self.n_positions == 1 else logits.view(-1, self.n_positions, self.n_classes)
