"""What the integration tests share: a real LocalCluster of two worker processes, and the
Hugging Face libraries offline (they read these settings once, when first imported)."""
import os
from contextlib import contextmanager

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.cluster import WorkerSetup


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as connected:
        connected.register_plugin(WorkerSetup())
        yield connected


@contextmanager
def one_worker_client():
    """A second real cluster of one worker process, to show bytes do not depend on the worker
    count."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as single:
        yield single


def load_dataset(folder, *args, **kwargs):
    """``datasets.load_dataset`` with its cache in the test's own ``folder`` (``datasets`` reads
    ``HF_HOME`` once, at import, so setting it per test does not move the cache)."""
    import datasets
    return datasets.load_dataset(*args, cache_dir=str(folder / "hf-datasets"), **kwargs)
