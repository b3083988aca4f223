"""Tests of robustbook.train: the one loop for training, adversarial training and evaluation."""
from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from robustbook import train
from robustbook.seeding import rng_state
from robustbook.train import History, fit, load_weights, make_loader, run_epoch

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent / "_train_scripts"
PYTHON = sys.executable
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))

_spec = importlib.util.spec_from_file_location("_train_toy", SCRIPTS / "toy.py")
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)

CE = nn.functional.cross_entropy


def _sgd(params):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9)


def _fit_toy(seed: int, epochs: int = 2, **kw) -> tuple[nn.Module, History]:
    torch.manual_seed(1234)  # same initial weights for every seed: fit.s seed drives shuffling, dropout, attacks
    model = toy.make_model()
    loader = make_loader(toy.Blobs(48), 16, shuffle=True, seed=seed)
    kw.setdefault("optimizer", _sgd)
    hist = fit(model, loader, loss_fn=CE, epochs=epochs, seed=seed, device="cpu", progress=False, **kw)
    return model, hist


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), env.get("PYTHONPATH", "")])
    return env


# --------------------------------------------------------------------------- loaders


def test_make_loader_order_depends_only_on_seed_and_epoch():
    ds = TensorDataset(torch.arange(20).float(), torch.arange(20))

    def order(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return torch.cat([y for _, y in loader]).tolist()

    a, b = make_loader(ds, 4, shuffle=True, seed=5), make_loader(ds, 4, shuffle=True, seed=5)
    for e in range(3):  # a walks through epochs 0..2, b jumps straight to 2
        order(a, e)
    assert order(a, 2) == order(b, 2)
    assert sorted(order(a, 2)) == list(range(20))
    assert order(a, 2) != order(a, 3)
    assert order(a, 2) != order(make_loader(ds, 4, shuffle=True, seed=6), 2)
    assert order(make_loader(ds, 4, shuffle=False, seed=5), 7) == list(range(20))
    state = torch.get_rng_state()
    a.sampler.set_epoch(4)
    assert sorted(a.sampler) == list(range(20))
    assert torch.equal(state, torch.get_rng_state()), "the sampler must not consume the global RNG"


def test_make_loader_rejects_bad_batch_size():
    ds = TensorDataset(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(ds, 0, shuffle=True, seed=0)


# --------------------------------------------------------------------------- fit: determinism, resume, config


def test_fit_same_seed_same_weights_different_seed_different_weights():
    m1, h1 = _fit_toy(seed=7)
    m2, h2 = _fit_toy(seed=7)
    m3, _ = _fit_toy(seed=8)
    assert _states_equal(m1.state_dict(), m2.state_dict())
    assert h1.series("train_loss") == h2.series("train_loss")
    assert not _states_equal(m1.state_dict(), m3.state_dict())


def test_resume_after_kill_matches_uninterrupted_run_bit_for_bit(tmp_path):
    script = str(SCRIPTS / "fit_run.py")
    env = _subprocess_env()

    def run(name, *extra):
        return subprocess.run([PYTHON, script, str(tmp_path / name), str(tmp_path / f"{name}_ckpt"),
                               "--epochs", "4", *extra], env=env, capture_output=True, text=True, timeout=120)

    full = run("full")
    assert full.returncode == 0, full.stderr
    killed = run("resumed", "--kill-after", "2")
    assert killed.returncode == 17, killed.stderr  # died by os._exit right after epoch 2's checkpoint
    assert not (tmp_path / "resumed" / "final.pt").exists()
    assert torch.load(tmp_path / "resumed_ckpt" / "last.pt", weights_only=True)["epoch"] == 2
    again = run("resumed")
    assert again.returncode == 0, again.stderr

    # the restarted process trained epochs 3 and 4 only
    assert (tmp_path / "resumed" / "epochs.txt").read_text().split() == ["1", "2", "3", "4"]
    a = torch.load(tmp_path / "full" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "final.pt", weights_only=True)
    assert _states_equal(a, b)
    ha = torch.load(tmp_path / "full_ckpt" / "last.pt", weights_only=True)["history"]
    hb = torch.load(tmp_path / "resumed_ckpt" / "last.pt", weights_only=True)["history"]
    assert [r["train_loss"] for r in ha] == [r["train_loss"] for r in hb]


def test_finished_checkpoint_returns_stored_history_without_training(tmp_path):
    trained, h1 = _fit_toy(seed=3, checkpoint_dir=tmp_path, config={"lr": 0.1})
    calls = []
    fresh, h2 = _fit_toy(seed=3, checkpoint_dir=tmp_path, config={"lr": 0.1},
                         callbacks=[lambda record, model: calls.append(record)])
    assert calls == []
    assert h2.as_dict() == h1.as_dict()
    assert _states_equal(fresh.state_dict(), trained.state_dict())
    stored = json.loads((tmp_path / "history.json").read_text())
    assert stored["epochs"] == h1.as_dict()["epochs"] and stored["seed"] == 3


def test_resume_with_different_config_or_seed_raises(tmp_path):
    _fit_toy(seed=3, epochs=1, checkpoint_dir=tmp_path, config={"lr": 0.1, "eps": 8})
    with pytest.raises(ValueError, match=r"different run(.|\n)*eps: checkpoint 8 vs given 4"):
        _fit_toy(seed=3, epochs=2, checkpoint_dir=tmp_path, config={"lr": 0.1, "eps": 4})
    with pytest.raises(ValueError, match="seed: checkpoint 3 vs given 4"):
        _fit_toy(seed=4, epochs=2, checkpoint_dir=tmp_path, config={"lr": 0.1, "eps": 8})
    # the same config continues (epoch 2 only)
    _, hist = _fit_toy(seed=3, epochs=2, checkpoint_dir=tmp_path, config={"eps": 8, "lr": 0.1})
    assert hist.series("epoch") == [1, 2]


def test_checkpoint_holds_everything_and_loads_weights_only(tmp_path):
    model, hist = _fit_toy(seed=2, epochs=2, checkpoint_dir=tmp_path,
                           scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5))
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "config", "seed"} <= set(ckpt)
    assert ckpt["scheduler"]["last_epoch"] == 2
    assert hist.series("lr") == pytest.approx([0.1, 0.05])  # the lr used during each epoch
    fresh = toy.make_model()
    assert not _states_equal(fresh.state_dict(), model.state_dict())
    load_weights(tmp_path / "last.pt", fresh)
    assert _states_equal(fresh.state_dict(), model.state_dict())
    torch.save(model.state_dict(), tmp_path / "bare.pt")  # a bare state dict works too
    other = load_weights(tmp_path / "bare.pt", toy.make_model())
    assert _states_equal(other.state_dict(), model.state_dict())
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "missing.pt", fresh)


def test_failed_checkpoint_write_keeps_previous_one_and_leaves_no_temp_files(tmp_path, monkeypatch):
    _fit_toy(seed=1, epochs=1, checkpoint_dir=tmp_path)
    before = (tmp_path / "last.pt").read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _fit_toy(seed=1, epochs=2, checkpoint_dir=tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "last.pt").read_bytes() == before
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "last.pt"]


def test_rng_state_survives_weights_only_round_trip(tmp_path):
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    stored = train._storable_rng(rng_state())
    torch.save(stored, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(()).item(), random.gauss(0, 1))
    train._restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(()).item(), random.gauss(0, 1)) == expected


# --------------------------------------------------------------------------- run_epoch: evaluation, attacks


def _linear_problem(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=8)


def _fgsm(eps, calls=None):
    def attack(model, x, y):
        if calls is not None:
            calls.append(model.training)
        x = x.clone().requires_grad_(True)
        CE(model(x), y).backward()  # the careless way: would leave .grad on the weights if they required it
        return (x + eps * x.grad.sign()).detach()
    return attack


def test_evaluation_changes_no_weight_and_leaves_no_grad_even_under_attack():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = _linear_problem()
    clean = run_epoch(model, loader, CE, progress=False)
    with torch.no_grad():  # even from inside no_grad the attack gets its input gradients
        adv = run_epoch(model, loader, CE, attack=_fgsm(0.5), progress=False)
    assert clean["n"] == adv["n"] == 32
    assert adv["loss"] > clean["loss"]  # the attack really ascended the loss
    assert _states_equal(before, model.state_dict())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert model.training  # the previous mode is restored


def test_adversarial_training_invokes_attack_on_every_training_batch():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    calls: list[bool] = []
    loader = _linear_problem()
    hist = fit(model, loader, loss_fn=CE, epochs=3, seed=0, optimizer=_sgd, attack=_fgsm(0.1, calls),
               eval_loader=loader, device="cpu", progress=False)
    assert len(calls) == 3 * len(loader) and all(calls)  # in train mode, once per batch
    assert len(hist) == 3 and "eval_loss" in hist.last
    robust = run_epoch(model, loader, CE, attack=_fgsm(0.1), progress=False)
    assert np.isfinite(robust["loss"])


def test_mix_alpha_weights_the_clean_loss():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    loader = _linear_problem()
    r = run_epoch(model, loader, CE, attack=_fgsm(0.3), mix_alpha=0.25, progress=False)
    assert r["loss_adv"] > r["loss_clean"]
    assert r["loss"] == pytest.approx(0.25 * r["loss_clean"] + 0.75 * r["loss_adv"], rel=1e-6)
    clean = run_epoch(model, loader, CE, progress=False)["loss"]
    assert r["loss_clean"] == pytest.approx(clean, rel=1e-6)
    with pytest.raises(ValueError, match="needs attack"):
        run_epoch(model, loader, CE, mix_alpha=0.5, progress=False)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        run_epoch(model, loader, CE, attack=_fgsm(0.1), mix_alpha=0.0, progress=False)


def test_regression_targets_and_collect():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    loader = make_loader(TensorDataset(x, y), 10, shuffle=True, seed=0)
    model = nn.Linear(3, 1)
    hist = fit(model, loader, loss_fn=nn.functional.mse_loss, epochs=5, seed=0,
               optimizer=lambda p: torch.optim.SGD(p, lr=0.1), device="cpu", progress=False)
    losses = hist.series("train_loss")
    assert losses[-1] < 0.5 * losses[0]
    ordered = DataLoader(TensorDataset(x, y), batch_size=16)
    r = run_epoch(model, ordered, nn.functional.mse_loss, collect=True, progress=False)
    assert torch.equal(r["target"], y) and r["pred"].shape == (40, 1)
    assert r["loss"] == pytest.approx(nn.functional.mse_loss(r["pred"], y).item(), rel=1e-5)
    assert not r["pred"].requires_grad


def test_collect_classification_predictions():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    loader = _linear_problem(n=20)
    r = run_epoch(model, loader, CE, collect=True, progress=False)
    assert r["pred"].shape == (20, 2) and r["target"].dtype == torch.long and r["n"] == 20
    assert torch.allclose(r["pred"], model(torch.cat([x for x, _ in loader])).detach())
    assert "pred" not in run_epoch(model, loader, CE, progress=False)


def test_callbacks_and_batch_scheduler_and_eval_fn():
    steps = []
    seen = []

    def eval_fn(model, loader):
        robust = run_epoch(model, loader, CE, attack=_fgsm(0.1), progress=False)["loss"]
        return {"robust_loss": robust, "np_metric": np.float32(0.5), "tensor_metric": torch.tensor(2.0)}

    torch.manual_seed(0)
    loader = _linear_problem()

    def sched(o):
        return torch.optim.lr_scheduler.LambdaLR(o, lambda step: steps.append(step) or 1.0)

    hist = fit(nn.Linear(4, 2), loader, loss_fn=CE, epochs=2, seed=0, optimizer=_sgd, scheduler=sched,
               scheduler_interval="batch", eval_loader=loader, eval_fn=eval_fn, device="cpu", progress=False,
               callbacks=[lambda record, model: seen.append(record["epoch"])])
    assert seen == [1, 2]
    assert len(steps) == 1 + 2 * len(loader)  # one at construction, then one per batch
    assert "robust_loss" in hist.last and "eval_loss" not in hist.last
    assert (hist.last["np_metric"], hist.last["tensor_metric"]) == (0.5, 2.0)
    assert all(type(v) in (int, float) for v in hist.last.values())
    with pytest.raises(ValueError, match="reserved"):
        fit(nn.Linear(4, 2), loader, loss_fn=CE, epochs=1, seed=0, optimizer=_sgd, eval_fn=lambda m, ld: {"lr": 1.0},
            device="cpu", progress=False)
    assert json.loads(json.dumps(hist.as_dict()))["epochs"][0]["epoch"] == 1


# --------------------------------------------------------------------------- bad input


def test_bad_arguments_raise_clear_errors():
    loader = _linear_problem()
    model = nn.Linear(4, 2)
    common = dict(loss_fn=CE, seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        fit(model, loader, epochs=1, optimizer=_sgd, amp=True, **common)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, loader, epochs=0, optimizer=_sgd, **common)
    with pytest.raises(ValueError, match="needs attack"):
        fit(model, loader, epochs=1, optimizer=_sgd, mix_alpha=0.5, **common)
    with pytest.raises(TypeError, match="factory params -> Optimizer"):
        fit(model, loader, epochs=1, optimizer="sgd", **common)
    with pytest.raises(ValueError, match="not parameters of the model"):
        fit(model, loader, epochs=1, optimizer=_sgd(nn.Linear(4, 2).parameters()), **common)
    with pytest.raises(TypeError, match="JSON-like"):
        fit(model, loader, epochs=1, optimizer=_sgd, config={"f": object()}, **common)
    with pytest.raises(TypeError, match=r"\(x, y\) pairs"):
        run_epoch(model, [(torch.zeros(2, 4),)], CE, progress=False)
    with pytest.raises(ValueError, match="reduction='mean'"):
        run_epoch(model, loader, nn.CrossEntropyLoss(reduction="none"), progress=False)
    with pytest.raises(ValueError, match="no batches"):
        run_epoch(model, [], CE, progress=False)
    # amp='auto' quietly runs in fp32 off CUDA; an optimizer instance is accepted
    hist = fit(model, loader, epochs=1, optimizer=_sgd(model.parameters()), amp="auto", **common)
    assert len(hist) == 1


def test_history_api():
    h = History([{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0}])
    assert h.last["epoch"] == 2 and h.series("train_loss") == [2.0, 1.0] and len(h) == 2
    with pytest.raises(KeyError, match="known keys"):
        h.series("eval_loss")
    with pytest.raises(IndexError):
        _ = History().last  # the property raises on an empty history


# --------------------------------------------------------------------------- DistributedDataParallel


def _run_with_timeout(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd``; on timeout stop it (SIGTERM, which torchrun passes on to its workers, then SIGKILL)."""
    proc = subprocess.Popen(cmd, env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # torchrun forwards SIGTERM to its workers, which live in other process groups
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"{cmd[0]} timed out after {timeout} s\n{out[-3000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_helpers_outside_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert train.world_size() == 1 and train.is_main_process()


def test_torchrun_two_processes_train_in_lockstep(tmp_path):
    if not Path(TORCHRUN).exists():
        pytest.skip("torchrun not installed beside this Python")
    proc = _run_with_timeout([TORCHRUN, "--standalone", "--nproc_per_node", "2", str(SCRIPTS / "ddp_fit.py"),
                               str(tmp_path)], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert _states_equal(w0, w1)
    saved = [line for line in (tmp_path / "saves_rank0.log").read_text().splitlines()]
    assert len(saved) == 4 and all(Path(p).parent == tmp_path / "ckpt" for p in saved)
    assert not (tmp_path / "saves_rank1.log").exists()  # only rank 0 writes
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["history.json", "last.pt"]
    ckpt = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2 and _states_equal(ckpt["model"], w0)
    h0 = json.loads((tmp_path / "history_rank0.json").read_text())
    h1 = json.loads((tmp_path / "history_rank1.json").read_text())
    assert h0 == h1
    losses = [r["train_loss"] for r in h0["epochs"]]
    assert losses[-1] < losses[0]
    assert (tmp_path / "main_rank0.txt").read_text().startswith("True")
    assert (tmp_path / "main_rank1.txt").read_text().startswith("False")
    assert [set(r) >= {"accuracy", "train_loss"} for r in h0["epochs"]] == [True] * 4
    # collect=True on a sharded loader: every rank gets all predictions, in dataset order, padding removed
    ds = toy.Blobs(21, seed=2)
    model = toy.make_model().eval()
    model.load_state_dict(w0)
    for r in (0, 1):
        got = torch.load(tmp_path / f"collect_rank{r}.pt", weights_only=True)
        assert torch.equal(got["target"], ds.y)
        assert torch.allclose(got["pred"], model(ds.x).detach(), atol=1e-6)
        assert got["n"] == 22  # DistributedSampler pads 21 samples to 2 × 11
    # a second fit in the same torchrun process re-created the process group and trained in lockstep
    f0 = torch.load(tmp_path / "finetuned_rank0.pt", weights_only=True)
    assert _states_equal(f0, torch.load(tmp_path / "finetuned_rank1.pt", weights_only=True))
    assert not _states_equal(f0, w0)
