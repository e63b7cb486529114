"""The shared training-run helpers: cached generated data, best-epoch checkpoints, resume with
this run's learning rate, the time budget, and the commands that made the weights."""
from __future__ import annotations

import torch

from cmrlib.models.training import TrainingRun, cached_pickle


def test_cached_pickle_generates_once(tmp_path):
    calls = []
    make = lambda: calls.append(1) or [1, 2, 3]  # noqa: E731
    assert cached_pickle(tmp_path / "c", "data", make) == [1, 2, 3]
    assert cached_pickle(tmp_path / "c", "data", make) == [1, 2, 3]
    assert len(calls) == 1 and (tmp_path / "c" / "data.pkl").is_file()


def test_best_epoch_resume_and_commands(tmp_path, capsys):
    net = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    run = TrainingRun(tmp_path, "m", "cmr train x --epochs 3", lambda m: m["err"])
    assert run.begin(net, opt, resume=False, lr=None, device="cpu") == 0
    weights = []
    for epoch, err in enumerate((3.0, 1.0, 2.0)):
        with torch.no_grad():
            net.weight.fill_(float(epoch))
        weights.append(net.weight.clone())
        assert run.end_epoch(epoch, net, opt, {"err": err})
    command, minutes = run.finish(net, "cpu")
    assert torch.equal(net.weight, weights[1])  # the best epoch (lowest err) is the one kept
    assert command == "cmr train x --epochs 3" and minutes >= 0 and [h["epoch"] for h in run.history] == [1, 2, 3]
    # resume: the history, the next epoch and this run's learning rate
    net2 = torch.nn.Linear(2, 1)
    opt2 = torch.optim.Adam(net2.parameters(), lr=1e-3)
    again = TrainingRun(tmp_path, "m", "cmr train x --resume --lr 0.0001", lambda m: m["err"], max_minutes=1e-9)
    assert again.begin(net2, opt2, resume=True, lr=1e-4, device="cpu") == 3
    assert opt2.param_groups[0]["lr"] == 1e-4 and len(again.history) == 3
    assert not again.end_epoch(3, net2, opt2, {"err": 5.0})  # over the time budget: stop
    command2, _ = again.finish(net2, "cpu")
    assert command2 == "cmr train x --epochs 3 && cmr train x --resume --lr 0.0001"
    assert "resumed from" in capsys.readouterr().err
