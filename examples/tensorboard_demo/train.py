"""Train a small neural network on scikit-learn's 8x8 digits, writing TensorBoard logs natively.

    python train.py --log_dir ./logs --epochs 20

A two-layer perceptron in numpy (ReLU, softmax cross-entropy, minibatch SGD with
momentum). Every epoch it writes, with tensorboardX's ``SummaryWriter``, the train and
test loss and accuracy as scalars and histograms of the weights, and flushes, so that a
TensorBoard following ``--log_dir`` sees the curves grow while it trains. The trained
weights go to ``./outputs/model.npz``. The digits ship inside scikit-learn: no download.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorboardX import SummaryWriter


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log_dir", default="./logs", help="where the TensorBoard event files go")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64, help="units of the hidden layer")
    parser.add_argument("--learning_rate", type=float, default=0.1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--epoch_sleep", type=float, default=0.5, help="seconds to pause after each epoch (so that a watcher sees the curves grow)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


class Perceptron:
    """64 -> hidden (ReLU) -> 10 (softmax), trained by SGD with momentum."""

    def __init__(self, inputs: int, hidden: int, classes: int, rng: np.random.Generator) -> None:
        self.params = {
            "hidden/weights": rng.normal(0, np.sqrt(2 / inputs), (inputs, hidden)),
            "hidden/bias": np.zeros(hidden),
            "output/weights": rng.normal(0, np.sqrt(1 / hidden), (hidden, classes)),
            "output/bias": np.zeros(classes),
        }
        self.velocity = {name: np.zeros_like(value) for name, value in self.params.items()}

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hidden activations and class probabilities."""
        hidden = np.maximum(0, x @ self.params["hidden/weights"] + self.params["hidden/bias"])
        logits = hidden @ self.params["output/weights"] + self.params["output/bias"]
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return hidden, probabilities / probabilities.sum(axis=1, keepdims=True)

    def step(self, x: np.ndarray, y: np.ndarray, learning_rate: float, momentum: float = 0.9) -> None:
        """One SGD step on a minibatch."""
        hidden, probabilities = self.forward(x)
        grad_logits = probabilities.copy()
        grad_logits[np.arange(len(y)), y] -= 1
        grad_logits /= len(y)
        grad_hidden = (grad_logits @ self.params["output/weights"].T) * (hidden > 0)
        grads = {
            "output/weights": hidden.T @ grad_logits,
            "output/bias": grad_logits.sum(axis=0),
            "hidden/weights": x.T @ grad_hidden,
            "hidden/bias": grad_hidden.sum(axis=0),
        }
        for name, grad in grads.items():
            self.velocity[name] = momentum * self.velocity[name] - learning_rate * grad
            self.params[name] += self.velocity[name]

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Mean cross-entropy and accuracy."""
        _, probabilities = self.forward(x)
        loss = -np.log(probabilities[np.arange(len(y)), y] + 1e-12).mean()
        return float(loss), float((probabilities.argmax(axis=1) == y).mean())


def main() -> None:
    args = parse_args()
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.25, random_state=args.seed)
    rng = np.random.default_rng(args.seed)
    model = Perceptron(x.shape[1], args.hidden, 10, rng)
    # tensorboardX writes from a queue, and its flush() does not wait for the queue: flush_secs=1
    # has its writer thread flush within a second of each event.
    writer = SummaryWriter(args.log_dir, flush_secs=1)
    print(f"Training on {len(x_train)} digits, testing on {len(x_test)}, for {args.epochs} epochs", flush=True)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            model.step(x_train[batch], y_train[batch], args.learning_rate)
        train_loss, train_accuracy = model.evaluate(x_train, y_train)
        test_loss, test_accuracy = model.evaluate(x_test, y_test)
        writer.add_scalar("loss/train", train_loss, epoch)
        writer.add_scalar("loss/test", test_loss, epoch)
        writer.add_scalar("accuracy/train", train_accuracy, epoch)
        writer.add_scalar("accuracy/test", test_accuracy, epoch)
        for name, value in model.params.items():
            writer.add_histogram(name, value, epoch)
        writer.flush()
        print(f"epoch {epoch}/{args.epochs}: loss {train_loss:.4f}, accuracy {train_accuracy:.4f}, "
              f"test accuracy {test_accuracy:.4f}", flush=True)
        time.sleep(args.epoch_sleep)
    writer.close()
    os.makedirs("outputs", exist_ok=True)
    np.savez("outputs/model.npz", **{name.replace("/", "_"): value for name, value in model.params.items()})
    print(f"Done: test accuracy {test_accuracy:.4f}; weights in outputs/model.npz", flush=True)


if __name__ == "__main__":
    main()
