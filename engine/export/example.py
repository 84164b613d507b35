"""Your own PyTorch module, trained on engine.dataset windows and exported for engine-play (the example the
README points to). Run it on recorded sessions:

    python -m engine.export.example --game demo --data-dir data --out models/mine.tflite
    engine-play --model models/mine.tflite --window "engine demo"

The three things that connect PyTorch to engine-play:
1. ``data_loader(windows, ...)`` gives float32 x (B, W*C, H, W'): the window's frames on the channel axis,
   scaled as engine-play scales pixels. Write the module for that shape (a Conv2d with W*C inputs).
2. Return logits and train with BCEWithLogitsLoss (multihot) or CrossEntropyLoss (combo); ``to_tflite``
   appends the sigmoid/softmax engine-play's thresholds read.
3. ``to_tflite(module, windows, path)`` writes path + its m.json from the windows' spec, and refuses a
   file that, run as engine-play runs it, differs from your module on real windows.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from torch import nn

from engine.dataset import Windows
from engine.dataset.torch_adapter import data_loader
from engine.export import to_tflite


class SmallNet(nn.Module):
    """Two strided convolutions with batch norm, global average pooling, one linear layer."""

    def __init__(self, in_channels: int, outputs: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(32, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # logits


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Train a small PyTorch module on a game's sessions; export it.")
    p.add_argument("--game", required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default="models/mine.tflite")
    p.add_argument("--epochs", type=int, default=5)
    ns = p.parse_args(argv)

    # multihot labels, one column per action; keys only (axes=()): with axis targets the loader yields a third
    # array and the module needs their output blocks (engine.train.mixed, engine.export.torch_tflite.heads_of)
    windows = Windows(ns.game, window=4, data_dir=ns.data_dir, axes=())
    parts = windows.split((0.8, 0.2), by="time", seed=0)
    train, val = parts["train"], parts["val"]
    channels = windows.spec.window * (3 if windows.spec.color == "rgb" else 1)

    torch.manual_seed(0)
    net = SmallNet(channels, len(windows.spec.actions))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = data_loader(train, batch_size=64, shuffle=True, seed=0)  # a new order each pass
    for epoch in range(ns.epochs):
        net.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(net(x), y.float())
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            val_loss = sum(float(loss_fn(net(x), y.float())) * len(x) for x, y in data_loader(val, 256)) / len(val)
        print(f"epoch {epoch + 1}: val loss {val_loss:.4f}")

    # Checked on validation windows (real frames the module did not train on); calibrated on training ones.
    for exported in to_tflite(net, train, ns.out, windows=val, quantize=True):
        print(exported.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
