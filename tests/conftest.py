import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/media.py and other helpers


def pytest_collection_modifyitems(config, items):
    """GPU tests run only when STREAMFILL_GPU_TESTS=1, and then they must not skip (they fail without a GPU)."""
    if os.environ.get("STREAMFILL_GPU_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="GPU test: set STREAMFILL_GPU_TESTS=1 to run (fails if no GPU)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
