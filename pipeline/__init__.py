"""The ImageNet-C pipeline: readers, preprocessing, the Dask graph, writers and scoring."""
