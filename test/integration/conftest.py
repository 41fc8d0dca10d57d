"""
Fixtures of several integration suites. Their building blocks, and
everything the benchmarks share with the suites, are in the harness
package at the repository root.
"""
import pytest

from harness.paths import scratch_dir


@pytest.fixture
def workdir(suite_store: str):
    """
    A scratch dir of the test below the store of its suite (the fixture
    suite_store of the suite's conftest), big enough for bundles and
    readable by every user
    """
    with scratch_dir(suite_store) as path:
        yield path
