"""A worker pool process uses WORKER_COMPUTE_THREADS threads for BLAS and PyTorch.

With a pool process per core, a BLAS thread per core in each process spins against the
other processes: ranking took twice the CPU for the same wall time.
"""

import os

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from digests.ranking import semantic
from digestsite import celery as celery_module

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@pytest.fixture
def restored_threads(monkeypatch):
    for variable in VARIABLES:  # restored by monkeypatch afterwards
        monkeypatch.setenv(variable, "3")
    torch_threads = torch.get_num_threads()
    with threadpool_limits(limits=3):  # restores each library's own limit on the way out
        torch.set_num_threads(3)
        yield
    torch.set_num_threads(torch_threads)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_pool_process_limits_its_compute_threads(settings, monkeypatch, restored_threads, threads):
    loaded = []
    monkeypatch.setattr(semantic, "get_model", lambda: loaded.append(True))
    settings.WORKER_COMPUTE_THREADS = threads

    celery_module._prepare_pool_process()

    assert {info["num_threads"] for info in threadpool_info()} == {threads}
    assert torch.get_num_threads() == threads
    assert {os.environ[variable] for variable in VARIABLES} == {str(threads)}  # for libraries loaded later
    assert loaded == [True]  # and the sentence model is loaded before the first batch
