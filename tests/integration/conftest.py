"""What the integration tests share: a real LocalCluster of two worker processes."""
import pytest

from pipeline.cluster import WorkerSetup


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as connected:
        connected.register_plugin(WorkerSetup())
        yield connected
