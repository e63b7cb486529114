"""What every `cmr train NAME` shares: cached generated training data, and a training run's
checkpoints — resume, the best epoch kept by a validation score, the time budget, and the
commands and minutes that made the weights (for the manifest's ``train_command``).

One home for these so the capabilities' trainers hold only their data, loss and validation.
"""
from __future__ import annotations

import json
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cached_pickle(cache: Path, tag: str, make: Callable[[], Any]) -> Any:
    """``make()``'s result, generated once and kept as ``cache/tag.pkl`` (written atomically)."""
    path = Path(cache) / f"{tag}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    items = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    import os
    tmp = path.with_suffix(f".{os.getpid()}.part")  # per process: two trainers may share one cache
    tmp.write_bytes(pickle.dumps(items))
    tmp.replace(path)
    return items


class TrainingRun:
    """Checkpoints of one model's training in ``cache``: ``<name>.ckpt.pt`` after every epoch
    (model, optimiser, history, commands, minutes) and ``<name>.best.pt`` (the epoch with the
    lowest ``score(metrics)``). ``resume`` continues from the checkpoint with this run's
    learning rate ``lr`` (the optimiser's saved one would override it)."""

    def __init__(self, cache: str | Path, name: str, command: str, score: Callable[[dict], float],
                 max_minutes: float | None = None):
        self.cache = Path(cache)
        self.cache.mkdir(parents=True, exist_ok=True)
        self.ckpt, self.best = self.cache / f"{name}.ckpt.pt", self.cache / f"{name}.best.pt"
        self.command, self.score, self.max_minutes = command, score, max_minutes
        self.start_epoch, self.history, self.commands, self.earlier_minutes = 0, [], [], 0.0
        self.t_start = time.perf_counter()

    def begin(self, model, optimizer, resume: bool, lr: float | None, device) -> int:
        """Load the checkpoint when ``resume`` (else forget an earlier best); returns the first epoch."""
        import torch
        if resume and self.ckpt.exists():
            state = torch.load(self.ckpt, weights_only=False, map_location=device)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr
            self.start_epoch, self.history = state["epoch"], state["history"]
            self.commands, self.earlier_minutes = state.get("commands", []), state.get("minutes", 0.0)
            print(f"resumed from {self.ckpt} at epoch {self.start_epoch}", file=sys.stderr)
        else:
            self.best.unlink(missing_ok=True)
        return self.start_epoch

    @property
    def minutes(self) -> float:
        return self.earlier_minutes + (time.perf_counter() - self.t_start) / 60

    def end_epoch(self, epoch: int, model, optimizer, record: dict) -> bool:
        """Record epoch ``epoch`` (0-based; ``record`` holds its losses and validation metrics),
        keep it if best, checkpoint; False when the time budget says stop."""
        import torch
        self.history.append({"epoch": epoch + 1, **record, "minutes": round(self.minutes, 2)})
        print(json.dumps(self.history[-1]), file=sys.stderr, flush=True)
        if self.score(record) <= min((self.score(h) for h in self.history[:-1]), default=float("inf")):
            torch.save({"model": model.state_dict(), "epoch": epoch + 1}, self.best)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                    "history": self.history, "commands": self.commands + [self.command], "minutes": self.minutes},
                   self.ckpt)
        if self.max_minutes and (time.perf_counter() - self.t_start) / 60 > self.max_minutes:
            print(f"stopping after {epoch + 1} epochs (--max-minutes {self.max_minutes})", file=sys.stderr)
            return False
        return True

    def finish(self, model, device) -> tuple[str, float]:
        """Load the best epoch's weights into ``model`` (eval mode); returns (the commands that
        made them, joined by ``&&``, total minutes)."""
        import torch
        if self.best.exists():
            model.load_state_dict(torch.load(self.best, weights_only=False, map_location=device)["model"])
        model.eval()
        return " && ".join(self.commands + [self.command]), self.minutes
