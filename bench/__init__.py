"""
Benchmarks: each module prints figures of the plugins against the floor
of the raw tools doing the same work, measured in the same run.

Run them from the repository root, as root, with the project's venv:

    .venv/bin/python -m bench.boot [--skip-throughput]
    .venv/bin/python -m bench.download [--size-mib N] [--rounds N]
    .venv/bin/python -m bench.stash [--rounds N]
    .venv/bin/python -m bench.rebuild [--keep DIR]

They take their services and fixtures' building blocks from the
harness package, as the integration tests do.
"""
