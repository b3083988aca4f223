"""robustbook.parallel: independent jobs in worker processes give what one process gives."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbook import parallel
from robustbook.run import chapter_env, run_workers
from robustbook.seeding import seed_everything


def train_tiny(seed: int, steps: int) -> dict:
    """A seeded job: a few Adam steps of a small network on random data (importable by the workers)."""
    seed_everything(seed)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return {"state": net.state_dict(), "threads": torch.get_num_threads()}


def fail_on(seed: int) -> int:
    if seed == 2:
        raise ValueError("bad seed")
    return seed


@pytest.mark.slow
def test_two_workers_give_the_weights_of_one_process():
    jobs = {("a", s): (s, 20) for s in range(3)}
    done = []
    inline = parallel.parallel_map(train_tiny, jobs, workers=1)
    spawned = parallel.parallel_map(train_tiny, jobs, workers=2, on_done=lambda k, r, t: done.append(k))
    assert list(spawned) == list(jobs)                     # results in the order of the jobs
    assert sorted(done) == sorted(jobs)                    # one progress call per job
    for k in jobs:
        assert spawned[k]["threads"] == 1                  # each worker single-threaded
        for name, t in inline[k]["state"].items():
            assert torch.equal(t, spawned[k]["state"][name]), (k, name)
    assert not torch.equal(inline[("a", 0)]["state"]["0.weight"], inline[("a", 1)]["state"]["0.weight"])


@pytest.mark.slow
def test_a_failing_job_names_itself():
    with pytest.raises(RuntimeError, match=r"job 'two' failed in a worker process: ValueError\('bad seed'\)"):
        parallel.parallel_map(fail_on, {"one": (1,), "two": (2,), "three": (3,)}, workers=2)


def test_inline_errors_propagate_unchanged():
    with pytest.raises(ValueError, match="bad seed"):
        parallel.parallel_map(fail_on, {"two": (2,)}, workers=1)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_bad_worker_counts_are_refused(bad):
    with pytest.raises(ValueError, match="workers must be a whole number >= 1"):
        parallel.parallel_map(fail_on, {"one": (1,)}, workers=bad)


@pytest.mark.parametrize("raw,expected", [("", 1), ("1", 1), ("3", 3), (" 2 ", 2)])
def test_worker_count_reads_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(parallel.WORKERS_ENV, raw)
    assert parallel.worker_count() == expected


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_malformed_worker_count_is_an_error(monkeypatch, raw):
    monkeypatch.setenv(parallel.WORKERS_ENV, raw)
    with pytest.raises(ValueError, match=r"ROBUSTBOOK_WORKERS must be a whole number >= 1"):
        parallel.worker_count()


def test_the_runner_gives_the_cores_its_threads_leave(monkeypatch):
    assert run_workers(1, cores=2) == 2
    assert run_workers("1", cores=8) == 8
    assert run_workers(16, cores=16) == 1
    assert run_workers("junk", cores=2) == 2
    monkeypatch.delenv(parallel.WORKERS_ENV, raising=False)
    from robustbook.params import discover
    from robustbook.paths import book_dir

    spec = discover(book_dir())["attacks"]
    monkeypatch.setattr("robustbook.run.available_cores", lambda: 2)
    assert chapter_env(spec, "quick", jobs=2, threads=1)[parallel.WORKERS_ENV] == "1"   # two chapters at once
    assert chapter_env(spec, "quick", jobs=1, threads=1)[parallel.WORKERS_ENV] == "2"


def graph_result(seed: int) -> dict:
    """A result that still holds a non-leaf tensor of an autograd graph (a report's loss, say)."""
    w = torch.ones(3, requires_grad=True)
    return {"loss": (w * seed).sum(), "plain": torch.arange(3)}


@pytest.mark.slow
def test_results_inside_an_autograd_graph_come_back_detached():
    out = parallel.parallel_map(graph_result, {1: (1,), 2: (2,)}, workers=2)
    assert float(out[2]["loss"]) == 6.0 and not out[2]["loss"].requires_grad
    assert torch.equal(out[1]["plain"], torch.arange(3))


def sum_of(t: torch.Tensor) -> float:
    return float(t.sum())


@pytest.mark.slow
def test_arguments_inside_an_autograd_graph_travel_detached():
    w = torch.ones(3, requires_grad=True)
    out = parallel.parallel_map(sum_of, {"a": (w * 2,), "b": (w * 3,)}, workers=2)
    assert out == {"a": 6.0, "b": 9.0}


def test_detached_copy_copies_what_deepcopy_refuses():
    w = torch.ones(3, requires_grad=True)
    net = nn.Linear(3, 1)
    net.last = w * 2                      # state kept from a forward pass, inside the graph
    twin = parallel.detached_copy(net)
    assert torch.equal(twin.last, net.last.detach()) and not twin.last.requires_grad
    assert twin.weight is not net.weight and torch.equal(twin.weight, net.weight)
    assert twin.weight.requires_grad      # parameters stay parameters
