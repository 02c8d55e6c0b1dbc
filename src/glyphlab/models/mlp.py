"""model=mlp: a dense torch network on flattened pixels."""
import torch
from torch import nn


class MLP(nn.Module):
    """Flattened image → hidden layers (Linear, ReLU, Dropout) → class logits.

    Input float ``[B, 1, H, W]`` in 0..1; output ``[B, n_classes]``, or
    ``[B, n_positions, n_classes]`` when the data has one label per position.
    """

    def __init__(self, image_size: int, n_classes: int, hidden_sizes=(256, 128), dropout: float = 0.2,
                 n_positions: int = 1):
        super().__init__()
        self.n_classes, self.n_positions = n_classes, n_positions
        layers, width = [nn.Flatten()], image_size * image_size
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_positions * n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.layers(x)
        return logits if self.n_positions == 1 else logits.view(-1, self.n_positions, self.n_classes)
