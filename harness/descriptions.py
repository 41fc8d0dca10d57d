"""
The kiwi descriptions that boxbuild runs of the suites and benchmarks
build: the tiny Debian description with the host's mirror, and a quick
job, whose box profile runs a script in the box and whose config.xml
kiwi rejects at once.
"""
import os
import shutil

from harness.paths import TINY_DEBIAN

# what the quick jobs of proof_script leave in the bundle
PROOF_FILE = 'proof-from-box.txt'


def description_copy(target: str, mirror: str, broken: bool = False) -> str:
    """
    A copy of the tiny Debian description with the host's mirror in it

    :param bool broken: add an element kiwi's schema rejects
    :return: target
    """
    shutil.copytree(TINY_DEBIAN, target)
    config = os.path.join(target, 'config.xml')
    with open(config) as handle:
        text = handle.read().replace('@MIRROR@', mirror)
    if broken:
        text = text.replace(
            '<package name="netbase"/>', '<package name="netbase"/><no-such-element/>'
        )
    with open(config, 'w') as handle:
        handle.write(text)
    return target


def write_quick_description(path: str, box_script: str) -> str:
    """
    A description whose boxprofile runs box_script in the box, and
    whose config.xml kiwi rejects at once: a real job of seconds

    :return: path of the description
    """
    os.makedirs(os.path.join(path, 'boxroot', 'etc'), exist_ok=True)
    with open(os.path.join(path, 'config.xml'), 'w') as config:
        config.write(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<image schemaversion="7.5" name="quick">\n'
            '    <no-such-element-kiwi-rejects/>\n'
            '</image>\n'
        )
    with open(os.path.join(path, 'description-proof.txt'), 'w') as proof:
        proof.write('read from the description\n')
    with open(os.path.join(path, 'boxroot', 'etc', 'boxprofile'), 'w') as profile:
        profile.write(box_script)
    return path


def proof_script(extra: str = '') -> str:
    """
    Box side proof that the shares work: read from the description,
    write into the bundle PROOF_FILE, report memory and cpus the box
    got and its kernel command line; then extra
    """
    return (
        'set -e\n'
        f'{{ cat /description/description-proof.txt; nproc; '
        f'grep MemTotal /proc/meminfo; cat /proc/cmdline; }} > /bundle/{PROOF_FILE}\n'
        + extra
    )
