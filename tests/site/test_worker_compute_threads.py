"""A worker pool process uses WORKER_COMPUTE_THREADS threads for BLAS and PyTorch.

With a pool process per core, a BLAS thread per core in each process spins against the
other processes: ranking took twice the CPU for the same wall time.
"""

import contextlib
import os

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from digestsite import celery as celery_module
from ranking import semantic

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SEMANTIC = semantic.is_available()  # PyTorch is there only with the semantic extra


@pytest.fixture
def restored_threads(monkeypatch):
    for variable in VARIABLES:  # restored by monkeypatch afterwards
        monkeypatch.setenv(variable, "3")
    with contextlib.ExitStack() as stack:
        stack.enter_context(threadpool_limits(limits=3))  # restores each library's own limit
        if SEMANTIC:
            import torch

            stack.callback(torch.set_num_threads, torch.get_num_threads())
            torch.set_num_threads(3)
        yield


@pytest.mark.parametrize("threads", [1, 2])
def test_a_pool_process_limits_its_compute_threads(settings, monkeypatch, restored_threads, threads):
    loaded = []
    monkeypatch.setattr(semantic, "get_model", lambda: loaded.append(True))
    settings.WORKER_COMPUTE_THREADS = threads

    celery_module._prepare_pool_process()

    assert {info["num_threads"] for info in threadpool_info()} == {threads}
    assert {os.environ[variable] for variable in VARIABLES} == {str(threads)}  # for libraries loaded later
    if SEMANTIC:
        import torch

        assert torch.get_num_threads() == threads
    assert loaded == ([True] if SEMANTIC else [])  # the sentence model is loaded before the first batch
