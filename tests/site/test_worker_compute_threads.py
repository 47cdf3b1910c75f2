"""A worker pool process uses WORKER_COMPUTE_THREADS threads for BLAS and the sentence model.

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


@pytest.fixture
def restored_threads(monkeypatch):
    for variable in VARIABLES:  # restored by monkeypatch afterwards
        monkeypatch.setenv(variable, "3")
    monkeypatch.setattr(semantic, "_model", None)  # this process's model is put back afterwards
    monkeypatch.setattr(semantic, "_availability", None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(threadpool_limits(limits=3))  # restores each library's own limit
        yield


@pytest.mark.parametrize("threads", [1, 2])
def test_a_pool_process_limits_its_compute_threads(settings, restored_threads, threads):
    settings.WORKER_COMPUTE_THREADS = threads

    celery_module._prepare_pool_process()

    assert {info["num_threads"] for info in threadpool_info()} == {threads}
    assert {os.environ[variable] for variable in VARIABLES} == {str(threads)}  # for libraries loaded later
    assert semantic._model is not None  # the sentence model is loaded before the first batch
    assert semantic.get_model().threads == threads


def test_a_pool_process_inheriting_a_one_thread_model_keeps_it(settings, restored_threads):
    settings.WORKER_COMPUTE_THREADS = 1
    celery_module._load_model_before_fork()  # the main process, before the pool forks
    inherited = semantic.get_model()
    celery_module._prepare_pool_process()
    assert semantic.get_model() is inherited and inherited.threads == 1
