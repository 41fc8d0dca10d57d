"""
podman as the suites and benchmarks use it: calls and their JSON
answers, and container storages of their own, never the user's.
"""
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional


def podman(environment: Optional[Dict[str, str]], *args: str) -> subprocess.CompletedProcess:
    """
    Run podman to its end, its output as text; a failure raises

    :param dict environment: of podman, None for this process's
    """
    return subprocess.run(
        ['podman'] + list(args), env=environment, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, text=True
    )


def podman_json(*args: str) -> Any:
    """
    What podman prints with --format json or by default in JSON
    (inspect), read
    """
    return json.loads(podman(None, *args).stdout)


def write_storage_conf(path: str, graphroot: str, runroot: str) -> str:
    """
    A storage.conf of an overlay storage in graphroot and runroot
    """
    with open(path, 'w') as handle:
        handle.write(
            '[storage]\n'
            'driver = "overlay"\n'
            f'graphroot = "{graphroot}"\n'
            f'runroot = "{runroot}"\n'
        )
    return path


def unmount_below(directory: str) -> None:
    """
    Unmount what podman left mounted below directory, deepest first
    """
    with open('/proc/self/mountinfo') as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    for point in sorted(points, key=len, reverse=True):
        if point.startswith(directory + '/'):
            subprocess.run(['umount', '-l', point], check=False)


@contextmanager
def private_storage(base: str, **variables: str) -> Iterator[Dict[str, str]]:
    """
    A container storage in base, set in the environment of this process
    and so of every tool it starts, for the time of the context; then
    its images are removed, the environment restored and base removed

    :param dict variables: more variables to set with it, such as
        CONTAINERS_REGISTRIES_CONF
    :return: the environment variables set
    """
    storage_conf = os.path.join(base, 'storage.conf')
    write_storage_conf(storage_conf, os.path.join(base, 'graph'), os.path.join(base, 'run'))
    variables = dict(CONTAINERS_STORAGE_CONF=storage_conf, **variables)
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield variables
    finally:
        subprocess.run(['podman', 'image', 'unmount', '--all'], capture_output=True)
        subprocess.run(['podman', 'rmi', '--all', '--force'], capture_output=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        unmount_below(base)
        shutil.rmtree(base, ignore_errors=True)
