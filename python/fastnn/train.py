"""The training loop: Trainer.fit over minibatches, History of the figures, callbacks."""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .module import Module
from ._checks import number, positive_int
from .data import DataLoader

__all__ = ["Trainer", "History", "Callback", "EarlyStopping", "Checkpoint", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """Raised when the loss becomes NaN or infinite; the message says where."""


@dataclass
class History:
    """Per-epoch and per-step figures of a run (lists of floats)."""

    epochs: List[float] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    train_acc: List[float] = field(default_factory=list)
    val_loss: List[float] = field(default_factory=list)
    val_acc: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    step_loss: List[float] = field(default_factory=list)
    epoch_time: List[float] = field(default_factory=list)
    update_ratio: Dict[str, List[float]] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in self.__dict__.items()}

    def plot(self, path: Optional[str] = None) -> Any:
        """Loss and accuracy curves (train and validation) per epoch, plus per-step loss.
        Saves a PNG when `path` is given; returns the matplotlib Figure. Needs the `plot` extra."""
        from ._plot import pyplot
        plt = pyplot()
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        ax = axes[0]
        if self.step_loss:
            ax.plot(np.arange(1, len(self.step_loss) + 1), self.step_loss, lw=0.6, alpha=0.7)
        ax.set_xlabel("step"); ax.set_ylabel("loss"); ax.set_title("training loss per step")
        ax.set_yscale("log") if self.step_loss and min(self.step_loss) > 0 else None
        ax = axes[1]
        if self.train_loss:
            ax.plot(self.epochs, self.train_loss, "o-", label="train")
        if self.val_loss:
            ax.plot(self.epochs[:len(self.val_loss)], self.val_loss, "o-", label="validation")
        ax.set_xlabel("epoch"); ax.set_ylabel("loss"); ax.set_title("loss"); ax.legend()
        ax = axes[2]
        if self.train_acc:
            ax.plot(self.epochs, self.train_acc, "o-", label="train")
        if self.val_acc:
            ax.plot(self.epochs[:len(self.val_acc)], self.val_acc, "o-", label="validation")
        ax.set_xlabel("epoch"); ax.set_ylabel("accuracy"); ax.set_title("accuracy"); ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=100)
            plt.close(fig)
        return fig


class Callback:
    """Hooks called by Trainer.fit; set `trainer.stop_training = True` to stop."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: Dict[str, float]) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved for `patience` epochs; optionally restore the
    best weights at the end. mode "auto": max for accuracies, min otherwise."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, restore_best: bool = True,
                 min_delta: float = 0.0, mode: str = "auto") -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a logged figure (e.g. 'val_loss'), "
                            f"got {type(monitor).__name__}")
        patience = positive_int(patience, "patience", minimum=0)
        self.monitor, self.patience, self.restore_best = monitor, patience, bool(restore_best)
        self.min_delta = number(min_delta, "min_delta", lo=0.0)
        self.mode = ("max" if "acc" in monitor else "min") if mode == "auto" else mode
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.best_state: Optional[Dict[str, np.ndarray]] = None
        self.wait = 0
        self.stopped_epoch: Optional[int] = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.best, self.best_epoch, self.best_state, self.wait, self.stopped_epoch = None, None, None, 0, None

    def _better(self, v: float) -> bool:
        if self.best is None:
            return True
        return v < self.best - self.min_delta if self.mode == "min" else v > self.best + self.min_delta

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: Dict[str, float]) -> None:
        if self.monitor not in logs:
            raise KeyError(f"EarlyStopping: monitor {self.monitor!r} is not among the logged figures {sorted(logs)}"
                           " (did you pass val_data?)")
        v = float(logs[self.monitor])
        if self._better(v):
            self.best, self.best_epoch, self.wait = v, epoch, 0
            if self.restore_best:
                self.best_state = trainer.model.state_dict()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                trainer.stop_training = True

    def on_train_end(self, trainer: "Trainer") -> None:
        if self.restore_best and self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class Checkpoint(Callback):
    """Save model, optimizer and epoch to `path` every `every` epochs (atomic .npz).
    `path` may contain "{epoch}" to keep one file per save."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], every: int = 1, **extra: Any) -> None:
        from .io import check_output_path
        every = positive_int(every, "every")
        path = check_output_path(path)  # now, not after the first epoch of training
        self.path, self.every, self.extra = path, every, extra

    def on_epoch_end(self, trainer: "Trainer", epoch: int, logs: Dict[str, float]) -> None:
        if (epoch + 1) % self.every == 0:
            trainer.save_checkpoint(self.path.format(epoch=epoch + 1), epoch + 1, **self.extra)


def _accuracy(outputs: np.ndarray, targets: Any) -> Optional[float]:
    t = np.asarray(targets)
    if outputs.ndim != 2:
        return None
    if t.dtype.kind in "iu" and t.ndim == 1:
        return float(np.mean(outputs.argmax(axis=1) == t))
    if (t.dtype.kind == "f" and t.shape == outputs.shape and t.shape[1] > 1 and (t >= 0).all()
            and np.allclose(t.sum(axis=1), 1.0, atol=1e-3)):  # probabilities (soft targets, mixup)
        return float(np.mean(outputs.argmax(axis=1) == t.argmax(axis=1)))
    return None


class Trainer:
    """Minibatch training of `model` with `loss_fn` and `optimizer`.

    `fit(train_loader, val_data, epochs)` returns a History; `evaluate(x, y)` and
    `predict(x)` run in eval mode. callbacks: EarlyStopping, Checkpoint or any Callback.
    metrics: ("accuracy",) or () (accuracy is skipped for non-classification outputs).
    """

    def __init__(self, model: Module, loss_fn: Callable[[np.ndarray, Any], Tuple[float, np.ndarray]],
                 optimizer: Any, callbacks: Sequence[Callback] = (),
                 metrics: Sequence[str] = ("accuracy",), track_update_ratio: bool = False) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"model: expected a fastnn Module, got {type(model).__name__}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn: expected a callable (outputs, targets) -> (loss, doutputs), got {type(loss_fn).__name__}")
        for m in metrics:
            if m != "accuracy":
                raise ValueError(f"metrics: only 'accuracy' is known, got {m!r}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.callbacks = list(callbacks)
        self.metrics = tuple(metrics)
        self.track_update_ratio = bool(track_update_ratio)
        self.history = History()
        self.epoch = 0
        self.stop_training = False

    # -- one step -------------------------------------------------------------------------
    def _current_lr(self) -> float:
        try:
            return float(self.optimizer.hyper("lr"))
        except Exception:
            g = getattr(self.optimizer, "param_groups", [{}])[0]
            lr = g.get("lr", float("nan"))
            return float(lr(0)) if callable(lr) else float(lr)

    def _diverged(self, step: int, loss: float, xb: np.ndarray) -> TrainingDiverged:
        where = self._first_nonfinite_layer(xb)
        msg = (f"training stopped: the loss became {loss} at step {step} (epoch {self.epoch + 1}), "
               f"learning rate {self._current_lr():.3g}")
        msg += f"; first non-finite output: {where}" if where else "; every layer output was finite (the loss itself overflowed)"
        return TrainingDiverged(msg + ". Lower the learning rate or check the inputs.")

    def _first_nonfinite_layer(self, xb: np.ndarray) -> Optional[str]:
        from .module import Sequential
        if not np.isfinite(xb).all():
            return "the input batch"
        if not isinstance(self.model, Sequential):
            return None
        x = xb
        for name, layer in self.model.named_children():
            x = layer(x)
            if not np.isfinite(x).all():
                return f"layer {name} ({type(layer).__name__})"
        return None

    def train_step(self, xb: np.ndarray, yb: Any) -> Tuple[float, np.ndarray]:
        """zero grads, forward, loss, backward, optimizer step -> (loss, outputs)."""
        self.optimizer.zero_grad()
        out = self.model(xb)
        loss, dout = self.loss_fn(out, yb)
        if not math.isfinite(loss):
            raise self._diverged(self._global_step, loss, xb)
        self.model.backward(dout)
        if self.track_update_ratio:
            before = {n: p.data.copy() for n, p in self.model.named_parameters()}
        self.optimizer.step()
        if self.track_update_ratio:
            for n, p in self.model.named_parameters():
                w = float(np.linalg.norm(before[n]))
                u = float(np.linalg.norm(p.data - before[n]))
                self._ratio_acc.setdefault(n, []).append(u / w if w > 0 else 0.0)
        self._global_step += 1
        return loss, out

    # -- loops ----------------------------------------------------------------------------
    def fit(self, train_loader: Union[DataLoader, Iterable], val_data: Any = None, epochs: int = 1,
            progress: bool = True, resume: Optional[str] = None) -> History:
        """Train for `epochs` epochs (counted from 0, or from the checkpoint's epoch when
        `resume` names one). val_data: (x, y) or a DataLoader, evaluated after each epoch."""
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs: expected an int >= 0, got {epochs!r}")
        from tqdm.auto import tqdm
        self._loader = train_loader
        if resume is not None:
            self.load_checkpoint(resume)
        self.stop_training = False
        self._global_step = getattr(self, "_global_step", 0)
        for cb in self.callbacks:
            cb.on_train_begin(self)
        try:
            while self.epoch < epochs and not self.stop_training:
                t0 = time.perf_counter()
                self.model.train()
                self._ratio_acc: Dict[str, List[float]] = {}
                losses, correct_w, seen = [], 0.0, 0
                lr_at_start = self._current_lr()
                bar = tqdm(train_loader, desc=f"epoch {self.epoch + 1}/{epochs}", leave=False,
                           disable=None if progress else True, unit="batch", file=sys.stderr)
                for xb, yb in bar:
                    loss, out = self.train_step(xb, yb)
                    losses.append(loss)
                    self.history.step_loss.append(loss)
                    if "accuracy" in self.metrics:
                        acc = _accuracy(out, yb)
                        if acc is not None:
                            correct_w += acc * len(out)
                            seen += len(out)
                    bar.set_postfix(loss=f"{loss:.4f}")
                bar.close()
                if not losses:
                    raise ValueError(
                        f"train_loader: yielded no batches in epoch {self.epoch + 1} (an empty "
                        "dataset, or drop_last=True with fewer samples than batch_size)")
                logs: Dict[str, float] = {"loss": float(np.mean(losses)),
                                          "lr": lr_at_start}
                if seen:
                    logs["accuracy"] = correct_w / seen
                self.history.epochs.append(float(self.epoch + 1))
                self.history.train_loss.append(logs["loss"])
                if seen:
                    self.history.train_acc.append(logs["accuracy"])
                self.history.lr.append(lr_at_start)
                for n, r in self._ratio_acc.items():
                    self.history.update_ratio.setdefault(n, []).append(float(np.mean(r)))
                if val_data is not None:
                    ev = self._evaluate_data(val_data)
                    logs["val_loss"] = ev["loss"]
                    self.history.val_loss.append(ev["loss"])
                    if "accuracy" in ev:
                        logs["val_accuracy"] = logs["val_acc"] = ev["accuracy"]
                        self.history.val_acc.append(ev["accuracy"])
                self.history.epoch_time.append(time.perf_counter() - t0)
                self.epoch += 1
                for cb in self.callbacks:
                    cb.on_epoch_end(self, self.epoch - 1, logs)
        finally:
            for cb in self.callbacks:
                cb.on_train_end(self)
        return self.history

    def _evaluate_data(self, data: Any) -> Dict[str, float]:
        if isinstance(data, tuple) and len(data) == 2:
            return self.evaluate(*data)
        total, correct, n, has_acc = 0.0, 0.0, 0, True
        was = self.model.training
        self.model.eval()
        try:
            for xb, yb in data:
                out = self.model(xb)
                loss, _ = self.loss_fn(out, yb)
                total += loss * len(out)
                acc = _accuracy(out, yb)
                if acc is None:
                    has_acc = False
                else:
                    correct += acc * len(out)
                n += len(out)
        finally:
            self.model.train(was)
        res = {"loss": total / max(n, 1)}
        if has_acc and "accuracy" in self.metrics:
            res["accuracy"] = correct / max(n, 1)
        return res

    def evaluate(self, x: np.ndarray, y: Any, batch_size: int = 256) -> Dict[str, float]:
        """Mean loss and accuracy on (x, y) in eval mode -> {"loss": float, "accuracy": float}."""
        out = self.predict(x, batch_size=batch_size)
        loss, _ = self.loss_fn(out, y)
        res = {"loss": float(loss)}
        acc = _accuracy(out, y)
        if acc is not None and "accuracy" in self.metrics:
            res["accuracy"] = acc
        return res

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """The model's outputs (logits) for x, in batches, in eval mode (mode restored after)."""
        from ._checks import as_float32
        x = as_float32(x, "x", min_ndim=1)
        batch_size = positive_int(batch_size, "batch_size")
        was = self.model.training
        self.model.eval()
        try:
            outs = [self.model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        finally:
            self.model.train(was)
        return np.concatenate(outs, axis=0) if outs else np.zeros((0,), np.float32)

    # -- checkpoints ----------------------------------------------------------------------
    def _generators(self) -> Dict[str, np.random.Generator]:
        """Every random generator the run draws from (loader, layers such as Dropout, the
        global one), so that a resumed run continues the same random streams."""
        from ._random import get_rng
        gens: Dict[str, np.random.Generator] = {"global": get_rng()}
        loader_rng = getattr(getattr(self, "_loader", None), "rng", None)
        if isinstance(loader_rng, np.random.Generator):
            gens["loader"] = loader_rng
        for name, mod in self.model.named_modules():
            for attr, val in vars(mod).items():
                if isinstance(val, np.random.Generator):
                    gens[f"model.{name}.{attr}"] = val
        return gens

    def _trainer_state(self) -> np.ndarray:
        import json
        state = {
            "epoch": self.epoch,
            "global_step": getattr(self, "_global_step", 0),
            "history": self.history.as_dict(),
            "rng": {k: g.bit_generator.state for k, g in self._generators().items()},
        }
        return np.array(json.dumps(state))

    def _restore_trainer_state(self, raw: Any) -> None:
        import json
        state = json.loads(str(np.asarray(raw)))
        self._global_step = int(state.get("global_step", 0))
        hist = state.get("history", {})
        self.history = History(**{k: v for k, v in hist.items() if k in History.__dataclass_fields__})
        gens = self._generators()
        for k, st in state.get("rng", {}).items():
            if k in gens and gens[k].bit_generator.state["bit_generator"] == st.get("bit_generator"):
                gens[k].bit_generator.state = st

    def save_checkpoint(self, path: str, epoch: Optional[int] = None, **extra: Any) -> None:
        """Model, optimizer, epoch, history and random-generator states to one .npz (atomic)."""
        from .io import save
        save(path, self.model, self.optimizer, epoch=self.epoch if epoch is None else epoch,
             _trainer_state=self._trainer_state(), **extra)

    def load_checkpoint(self, path: str, **extra: Any) -> Dict[str, Any]:
        """Restore model, optimizer, history and generator states from `path`; training
        continues at the checkpoint's epoch. Returns what load() did not consume."""
        from .io import load
        rest = load(path, self.model, self.optimizer, **extra)
        self.epoch = int(rest.get("epoch") or 0)
        if "_trainer_state" in rest:
            self._restore_trainer_state(rest.pop("_trainer_state"))
        return rest
