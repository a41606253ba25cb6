"""A multi-layer perceptron in plain numpy, as seed 004 wrote it: ReLU hidden layers, dropout
that keeps a unit with probability `keep` (and scales by `keep` at test time), an L1 penalty on
every weight matrix, softmax cross-entropy, mini-batch Adam or SGD. Vectorised and seeded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
EVAL_BATCH = 4096


@dataclass(frozen=True)
class MLPConfig:
    """The network and how it trains.

    Attributes:
        hidden: units of each hidden layer.
        keep: dropout keep probability.
        dropout_layers: dropout on the outputs of the first this many hidden layers.
        l1: L1 penalty coefficient on every weight matrix (not the biases).
        optimizer: "adam" or "sgd".
        learning_rate: step size of the optimizer.
        batch_size: samples per mini-batch.
        epochs: passes over the training data.
        seed: initialisation, shuffling and dropout masks.
    """

    hidden: tuple[int, ...] = (128, 128, 128)
    keep: float = 0.75
    dropout_layers: int = 2
    l1: float = 1e-5
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 100
    epochs: int = 100
    seed: int = 0


def glorot_uniform(rng: np.random.Generator, n_in: int, n_out: int, dtype) -> np.ndarray:
    """Weights drawn from U(-a, a), a = sqrt(6 / (n_in + n_out)) (Glorot and Bengio, 2010)."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)).astype(dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum for stability."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true classes."""
    return float(-np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12)))


class Adam:
    """Adam (Kingma and Ba, 2015) over a list of arrays, updated in place."""

    def __init__(self, params: list[np.ndarray], learning_rate: float):
        self.rate = learning_rate
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        b1, b2 = ADAM_BETAS
        self.t += 1
        rate = float(self.rate * np.sqrt(1 - b2**self.t) / (1 - b1**self.t))
        for p, g, m, v in zip(params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= rate * m / (np.sqrt(v) + ADAM_EPSILON)


class SGD:
    """Plain mini-batch gradient descent."""

    def __init__(self, params: list[np.ndarray], learning_rate: float):
        self.rate = learning_rate

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for p, g in zip(params, grads, strict=True):
            p -= self.rate * g


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


class NumpyMLP:
    """The network: `init` draws the weights, `fit` trains, `predict_proba` evaluates."""

    def __init__(self, config: MLPConfig):
        self.config = config
        self.params: list[np.ndarray] = []  # W1, b1, W2, b2, ...

    @property
    def sizes(self) -> tuple[int, ...]:
        """Units of every layer, input to output."""
        weights = self.params[0::2]
        return (weights[0].shape[0], *(w.shape[1] for w in weights))

    def init(self, n_in: int, n_out: int, dtype=np.float32) -> NumpyMLP:
        """Draw Glorot-uniform weights and zero biases, seeded."""
        rng = np.random.default_rng(self.config.seed)
        sizes = (n_in, *self.config.hidden, n_out)
        self.params = []
        for a, b in layer_shapes(sizes):
            self.params += [glorot_uniform(rng, a, b, dtype), np.zeros(b, dtype)]
        return self

    def forward(self, x: np.ndarray, rng: np.random.Generator | None = None) -> tuple:
        """Class probabilities and what backward needs; `rng` draws dropout masks (training),
        None evaluates (hidden outputs scaled by `keep` instead)."""
        keep, cache = self.config.keep, []
        a = x.astype(self.params[0].dtype, copy=False)
        for i in range(0, len(self.params) - 2, 2):
            z = a @ self.params[i] + self.params[i + 1]
            gate = z > 0
            if i // 2 < self.config.dropout_layers:
                if rng is None:
                    gate = gate * np.asarray(keep, z.dtype)
                else:
                    gate &= rng.random(z.shape, dtype=np.float32) < keep
            cache.append((a, gate))
            a = z * gate
        probs = softmax(a @ self.params[-2] + self.params[-1])
        return probs, (cache, a)

    def penalty(self) -> float:
        """The L1 term: l1 times the sum of absolute weights."""
        return self.config.l1 * float(sum(np.abs(w).sum() for w in self.params[0::2]))

    def loss(self, probs: np.ndarray, y: np.ndarray) -> float:
        """Mean cross-entropy plus the L1 penalty."""
        return cross_entropy(probs, y) + self.penalty()

    def backward(self, probs: np.ndarray, y: np.ndarray, saved: tuple) -> list[np.ndarray]:
        """Gradients of `loss` with respect to every parameter, in the order of `params`."""
        cache, last = saved
        delta = probs.copy()
        delta[np.arange(len(y)), y] -= 1
        delta /= len(y)
        grads = [last.T @ delta, delta.sum(axis=0)]
        for i in range(len(cache) - 1, -1, -1):
            delta = (delta @ self.params[2 * i + 2].T) * cache[i][1]
            grads = [cache[i][0].T @ delta, delta.sum(axis=0), *grads]
        for k in range(0, len(grads), 2):
            grads[k] += self.config.l1 * np.sign(self.params[k])
        return grads

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities at test time (no dropout), in batches."""
        return np.concatenate(
            [self.forward(x[i : i + EVAL_BATCH])[0] for i in range(0, len(x), EVAL_BATCH)]
        )

    def _epoch(self, x, y, optimizer, rng) -> tuple[float, float]:
        order = rng.permutation(len(x))
        total_loss, correct = 0.0, 0
        for start in range(0, len(x), self.config.batch_size):
            pick = order[start : start + self.config.batch_size]
            probs, saved = self.forward(x[pick], rng)
            optimizer.step(self.params, self.backward(probs, y[pick], saved))
            total_loss += cross_entropy(probs, y[pick]) * len(pick)
            correct += int(np.sum(probs.argmax(axis=1) == y[pick]))
        return total_loss / len(x) + self.penalty(), correct / len(x)

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        progress: Callable[[str], None] | None = None,
        report_every: int = 1,
    ) -> dict:
        """Train for `epochs`, keep the weights of the epoch best on validation; `progress`
        gets a line every `report_every` epochs (and after the last).

        Returns:
            History: loss, accuracy (training batches, with dropout), val_loss,
            val_accuracy per epoch, best_epoch and seconds.
        """
        config = self.config
        x, x_val = x.astype(np.float32), x_val.astype(np.float32)
        if not self.params:
            self.init(x.shape[1], int(max(y.max(), y_val.max())) + 1)
        rng = np.random.default_rng(config.seed + 1)
        optimizer = OPTIMIZERS[config.optimizer](self.params, config.learning_rate)
        history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
        best, start = (-1.0, None), time.perf_counter()
        for epoch in range(config.epochs):
            loss, acc = self._epoch(x, y, optimizer, rng)
            probs = self.predict_proba(x_val)
            val_acc = float(np.mean(probs.argmax(axis=1) == y_val))
            for key, value in zip(
                history, (loss, acc, self.loss(probs, y_val), val_acc), strict=True
            ):
                history[key].append(float(value))
            if val_acc > best[0]:
                best = (val_acc, [p.copy() for p in self.params])
            if progress and ((epoch + 1) % report_every == 0 or epoch + 1 == config.epochs):
                elapsed = time.perf_counter() - start
                progress(
                    f"  epoch {epoch + 1}/{config.epochs}: val {100 * val_acc:.2f}% ({elapsed:.0f} s)"
                )
        self.params = best[1]
        history["best_epoch"] = int(np.argmax(history["val_accuracy"])) + 1
        history["seconds"] = round(time.perf_counter() - start, 1)
        return history

    def keras_weights(self) -> list[np.ndarray]:
        """The weights with test-time dropout scaling folded in: a plain Dense-ReLU stack with
        these weights computes `predict_proba` exactly (Keras' dropout is identity at test)."""
        out = [p.astype(np.float32) for p in self.params]
        for layer in range(1, self.config.dropout_layers + 1):
            out[2 * layer] = out[2 * layer] * np.float32(self.config.keep)
        return out


def layer_shapes(sizes: tuple[int, ...]) -> list[tuple[int, int]]:
    """(inputs, outputs) of each dense layer between layers of these sizes."""
    return list(zip(sizes[:-1], sizes[1:], strict=True))


def multiplications(sizes: tuple[int, ...]) -> int:
    """Multiplications of one forward pass through dense layers of these sizes: sum n_i * n_i+1."""
    return int(sum(a * b for a, b in layer_shapes(sizes)))
