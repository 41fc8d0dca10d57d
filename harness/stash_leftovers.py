"""
What a stash or stackbuild run can leave behind, looked up the way a
user would find it: mounts of a container storage, the stacking dirs
beside a target root, stash work dirs, run journals naming a path,
containers, and processes naming a path.
"""
import glob
import os
from typing import Dict, List

from harness.podman import podman_json
from harness.processes import processes_mentioning

# where stash and stackbuild keep their run journals
JOURNAL_DIR = '/var/lib/kiwi-stackbuild/journals'


def mounts_below(directory: str) -> List[str]:
    """
    The mount points below directory, from this process's mount table
    """
    with open('/proc/self/mountinfo') as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    return [point for point in points if point.startswith(directory.rstrip('/') + '/')]


def storage_mounts(variables: Dict[str, str]) -> List[str]:
    """
    The image mounts of the private storage that the suite's fixture
    set up; the overlay driver's bind mount of its own directory, which
    stays, is none

    :param dict variables: what the fixture set, CONTAINERS_STORAGE_CONF
        among them
    """
    return [
        point for point in mounts_below(os.path.dirname(variables['CONTAINERS_STORAGE_CONF']))
        if point.endswith('/merged')
    ]


def journals_naming(path: str) -> List[str]:
    """
    The run journals that mention path, such as a target dir
    """
    found = []
    for journal in glob.glob(os.path.join(JOURNAL_DIR, '*.journal')):
        try:
            with open(journal) as handle:
                if path in handle.read():
                    found.append(journal)
        except FileNotFoundError:
            pass
    return found


def leftovers(variables: Dict[str, str], target_dir: str, temp_dir: str) -> Dict[str, list]:
    """
    Everything a run with this storage, target dir and temp dir can
    leave; all empty when it left nothing

    :param str target_dir: the --target-dir of a stackbuild, or the
        --root of a stash
    """
    return {
        'mounts': storage_mounts(variables),
        'staging dirs': glob.glob(os.path.join(target_dir, 'build', '.image-root.stacking-*')),
        'stash work dirs': glob.glob(os.path.join(temp_dir, 'kiwi-stash-*')),
        'journals': journals_naming(target_dir) + journals_naming(temp_dir),
        'containers': podman_json('ps', '--all', '--format', 'json') or [],
        'processes': processes_mentioning(target_dir),
    }
