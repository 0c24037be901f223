"""Train a small PyTorch network on scikit-learn's 8x8 digits, writing TensorBoard logs natively.

    python train_torch.py --log_dir ./logs --epochs 20

The same job as ``train.py``, written with PyTorch: an ``nn.Sequential`` of two linear
layers trained with SGD, logged with ``torch.utils.tensorboard.SummaryWriter`` (train and
test loss and accuracy per epoch, and histograms of the weights), flushed every epoch.
The trained weights go to ``./outputs/model.pt``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.tensorboard import SummaryWriter


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log_dir", default="./logs", help="where the TensorBoard event files go")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64, help="units of the hidden layer")
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epoch_sleep", type=float, default=0.25, help="seconds to pause after each epoch")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy."""
    with torch.no_grad():
        logits = model(x)
        return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(dim=1) == y).float().mean())


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=args.seed)
    x_train, x_test = (torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test))
    y_train, y_test = (torch.tensor(a, dtype=torch.long) for a in (y_train, y_test))
    model = nn.Sequential(nn.Linear(64, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9)
    writer = SummaryWriter(args.log_dir)
    print(f"Training on {len(x_train)} digits, testing on {len(x_test)}, for {args.epochs} epochs", flush=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch in torch.randperm(len(x_train)).split(args.batch_size):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        model.eval()
        train_loss, train_accuracy = evaluate(model, x_train, y_train)
        test_loss, test_accuracy = evaluate(model, x_test, y_test)
        writer.add_scalar("loss/train", train_loss, epoch)
        writer.add_scalar("loss/test", test_loss, epoch)
        writer.add_scalar("accuracy/train", train_accuracy, epoch)
        writer.add_scalar("accuracy/test", test_accuracy, epoch)
        for name, parameter in model.named_parameters():
            writer.add_histogram(name, parameter.detach(), epoch)
        writer.flush()
        print(f"epoch {epoch}/{args.epochs}: loss {train_loss:.4f}, accuracy {train_accuracy:.4f}, "
              f"test accuracy {test_accuracy:.4f}", flush=True)
        time.sleep(args.epoch_sleep)
    writer.close()
    os.makedirs("outputs", exist_ok=True)
    torch.save(model.state_dict(), "outputs/model.pt")
    print(f"Done: test accuracy {test_accuracy:.4f}; weights in outputs/model.pt", flush=True)


if __name__ == "__main__":
    main()
