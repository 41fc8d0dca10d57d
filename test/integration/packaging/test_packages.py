"""
The release artifacts, built by package/release-check from a clean clone
of this repository, examined and installed the way users of a
distribution get them: the RPMs with rpm, the .deb with apt next to
Debian's own kiwi.
"""
import ast
import glob
import importlib.metadata
import os
import re
import shutil
import subprocess
import tempfile
from typing import Dict, List, Set

import pytest
import yaml

PROJECT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
RELEASE_CHECK = os.path.join(PROJECT, 'package', 'release-check')
CACHE = '/var/cache/kiwi-plugins-test/packaging'
# distribution packages are built and used with the system's python,
# never with the virtualenv that runs the tests
SYSTEM_PYTHON = '/usr/bin/python3'
SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'
DEB_PACKAGE = 'python3-kiwi-plugins'
RPM_PACKAGES = {
    'python3-kiwi_plugin_support': 'kiwi_plugin_support',
    'python3-kiwi_boxed_plugin': 'kiwi_boxed_plugin',
    'python3-kiwi_stackbuild_plugin': 'kiwi_stackbuild_plugin',
}

pytestmark = [pytest.mark.integration]


def system_env(**extra: str) -> Dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(('PYTHON', 'PYENV', 'VIRTUAL_ENV', 'TOX_'))
    }
    env.update(PATH=SYSTEM_PATH, **extra)
    return env


def run(argv: List[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault('env', system_env())
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def versions() -> List[str]:
    """
    The version of the checkout the artifacts are built from (not of
    whatever copy the test runner has installed) and of its packages,
    as the release check reads and writes them
    """
    return run([SYSTEM_PYTHON, RELEASE_CHECK, 'version']).stdout.split()


def version() -> str:
    return versions()[0]


def usage_of(task_module: str) -> str:
    with open(os.path.join(PROJECT, task_module)) as handle:
        return ast.get_docstring(ast.parse(handle.read()), clean=False).strip()


def package_version() -> str:
    """The version of the rpm and deb packages, as the release check writes it"""
    return versions()[1]


def tracked_files(package: str) -> List[str]:
    return run(['git', '-C', PROJECT, 'ls-files', '--', package]).stdout.split()


def man_pages_of(package: str) -> List[str]:
    # kiwi's Help shows the page kiwi::system::<command> for the task
    # module tasks/system_<command>.py
    return [
        'kiwi::system::{0}.8'.format(match.group(1))
        for match in map(
            re.compile(r'.*/tasks/system_(\w+)\.py$').match, tracked_files(package)
        ) if match
    ]


@pytest.fixture(scope='module')
def artifacts() -> str:
    """Every release artifact, built once from a clean clone"""
    out = os.path.join(CACHE, 'artifacts')
    shutil.rmtree(out, ignore_errors=True)
    built = run([SYSTEM_PYTHON, RELEASE_CHECK, 'check', '--out', out], timeout=1200)
    assert built.returncode == 0, built.stdout + built.stderr
    assert f'kiwi-plugins {version()}: release check passed' in built.stdout
    return out


def rpm_of(artifacts: str, name: str) -> str:
    return os.path.join(artifacts, f'{name}-{package_version()}-0.noarch.rpm')


def test_release_check_builds_every_artifact(artifacts):
    names = set(os.listdir(artifacts))
    expected = {
        f'kiwi_plugins-{version()}.tar.gz',
        f'kiwi_plugins-{version()}-py3-none-any.whl',
        f'python-kiwi-plugins-{package_version()}-0.src.rpm',
        f'{DEB_PACKAGE}_{package_version()}-1_all.deb',
        'python-kiwi-plugins.spec',
        'python-kiwi-plugins.changes',
    } | {os.path.basename(rpm_of(artifacts, name)) for name in RPM_PACKAGES}
    assert expected <= names
    spec = open(os.path.join(artifacts, 'python-kiwi-plugins.spec')).read()
    assert re.search(rf'^Version: +{re.escape(package_version())}$', spec, re.M)
    assert '@' not in re.sub(r'^#.*$', '', spec, flags=re.M)


@pytest.mark.parametrize('name,package', sorted(RPM_PACKAGES.items()))
def test_rpm_carries_its_package_catalog_agent_and_man_pages(artifacts, name, package):
    listed = run(['rpm', '-qlp', rpm_of(artifacts, name)]).stdout.split('\n')
    sitelib = re.compile(r'^/usr/lib/python3\.\d+/site-packages/')
    files = {sitelib.sub('', path) for path in listed if sitelib.match(path)}
    missing = [path for path in tracked_files(package) if path not in files]
    assert not missing
    # the distribution's metadata goes with the common package, each
    # plugin's task registration with the plugin
    metadata = 'kiwi_plugins-' if package == 'kiwi_plugin_support' else \
        f'{package}-{version()}.dist-info'
    assert [path for path in files if path.startswith(metadata)]
    assert not [
        path for path in files
        if path != package and not path.startswith((package + '/', metadata))
    ]
    pages = {os.path.basename(path) for path in listed if '/man/man8/' in path}
    assert {page.split('.8')[0] + '.8' for page in pages} == set(man_pages_of(package))
    if package == 'kiwi_boxed_plugin':
        assert 'kiwi_boxed_plugin/kiwi_boxed_plugin.yml' in files
        assert [path for path in files if path.startswith('kiwi_boxed_plugin/agent/')]


@pytest.mark.parametrize('name,expected', [
    ('python3-kiwi_plugin_support', [
        'python3-kiwi >= 9.24', 'python3-kiwi < 11', 'python3-requests',
        'python3-pyyaml', 'python3-progressbar2'
    ]),
    ('python3-kiwi_boxed_plugin', [
        'python3-kiwi_plugin_support = {version}-0', 'qemu-kvm', 'virtiofsd', 'sshfs'
    ]),
    ('python3-kiwi_stackbuild_plugin', [
        'python3-kiwi_plugin_support = {version}-0', 'podman', 'buildah', 'rsync', 'skopeo'
    ]),
])
def test_rpm_runtime_requirements(artifacts, name, expected):
    requires = run(['rpm', '-qRp', rpm_of(artifacts, name)]).stdout.splitlines()
    requires = [line.strip() for line in requires]
    expected = [item.format(version=package_version()) for item in expected]
    assert [item for item in expected if item not in requires] == []


def unpack_rpms(rpms: List[str], root: str) -> str:
    """Unpack the payload of the rpms into root, return its sitelib"""
    for rpm in rpms:
        payload = subprocess.Popen(['rpm2cpio', rpm], stdout=subprocess.PIPE)
        subprocess.run(['cpio', '-idm', '--quiet'], stdin=payload.stdout, cwd=root, check=True)
        assert payload.wait() == 0
    return glob.glob(os.path.join(root, 'usr', 'lib', 'python3.*', 'site-packages'))[0]


@pytest.mark.parametrize('plugin', ['kiwi_boxed_plugin', 'kiwi_stackbuild_plugin'])
def test_rpm_plugin_alone_registers_only_its_tasks(artifacts, plugin, tmp_path):
    # kiwi imports every registered task when it starts: a plugin
    # installed without the other must not register the other's tasks
    sitelib = unpack_rpms([
        rpm_of(artifacts, 'python3-kiwi_plugin_support'),
        rpm_of(artifacts, f'python3-{plugin}')
    ], str(tmp_path))
    tasks = [
        entry for distribution in importlib.metadata.distributions(path=[sitelib])
        for entry in distribution.entry_points if entry.group == 'kiwi.tasks'
    ]
    expected = {
        'system_' + page.split('::')[-1][:-2] for page in man_pages_of(plugin)
    }
    assert {entry.name for entry in tasks} == expected
    for entry in tasks:
        module = os.path.join(sitelib, *entry.value.split('.')) + '.py'
        assert os.path.isfile(module), entry


def installed_packages() -> Set[str]:
    listing = run(['dpkg-query', '-W', '-f', '${Package} ${db:Status-Status}\n'])
    return {
        line.split()[0] for line in listing.stdout.splitlines()
        if line.endswith(' installed')
    }


def apt_get(*args: str) -> subprocess.CompletedProcess:
    # other apt users on the machine: wait for the dpkg lock
    return run(
        ['apt-get', '-y', '-q', '-o', 'DPkg::Lock::Timeout=600', *args],
        env=system_env(DEBIAN_FRONTEND='noninteractive'), timeout=1200
    )


@pytest.fixture
def installed_deb(artifacts):
    """
    The .deb installed with apt, which brings Debian's kiwi; purged
    again afterwards with every package it brought
    """
    if DEB_PACKAGE in installed_packages():
        # left by an interrupted run
        assert apt_get('purge', DEB_PACKAGE).returncode == 0
    before = installed_packages()
    deb = os.path.join(artifacts, f'{DEB_PACKAGE}_{package_version()}-1_all.deb')
    installed = apt_get('install', '--no-install-recommends', deb)
    brought = sorted(installed_packages() - before)
    try:
        assert installed.returncode == 0, installed.stdout + installed.stderr
        yield brought
    finally:
        if brought:
            purged = apt_get('purge', *brought)
            assert purged.returncode == 0, purged.stdout + purged.stderr
        assert not (installed_packages() - before)


@pytest.mark.slow
def test_deb_runs_with_debians_kiwi(installed_deb):
    assert DEB_PACKAGE in installed_deb
    owner = run(['dpkg-query', '-S', '/usr/bin/kiwi-ng']).stdout
    assert owner.startswith('kiwi: ')
    kiwi_version = run(['dpkg-query', '-W', '-f', '${Version}', 'kiwi']).stdout
    assert kiwi_version.startswith('9.24.')
    # run away from the checkout: python puts the working directory first
    located = run([SYSTEM_PYTHON, '-c', (
        'import kiwi, kiwi_boxed_plugin, kiwi_stackbuild_plugin, kiwi_plugin_support\n'
        'for module in (kiwi, kiwi_boxed_plugin, kiwi_stackbuild_plugin, '
        'kiwi_plugin_support):\n    print(module.__file__)'
    )], cwd='/')
    assert located.returncode == 0, located.stderr
    assert all(
        path.startswith('/usr/lib/python3/dist-packages/')
        for path in located.stdout.split()
    ), located.stdout

    with tempfile.TemporaryDirectory() as home:
        # no user catalog and no pager: what a fresh user sees
        env = system_env(
            HOME=home, LANG='C.UTF-8', MANPAGER='cat', PAGER='cat',
            KIWI_BOXED_PLUGIN_CFG=os.path.join(home, 'no-catalog.yml')
        )

        def kiwi_ng(*args: str) -> subprocess.CompletedProcess:
            return run(['/usr/bin/kiwi-ng', *args], env=env, cwd=home, timeout=300)

        for command, module in [
            ('boxbuild', 'kiwi_boxed_plugin/tasks/system_boxbuild.py'),
            ('stash', 'kiwi_stackbuild_plugin/tasks/system_stash.py'),
            ('stackbuild', 'kiwi_stackbuild_plugin/tasks/system_stackbuild.py'),
        ]:
            shown = kiwi_ng('system', command, '--help')
            assert shown.returncode == 0, shown.stdout + shown.stderr
            assert usage_of(module) in shown.stdout
            manual = kiwi_ng('system', command, 'help')
            assert manual.returncode == 0, manual.stdout + manual.stderr
            assert f'kiwi::system::{command}' in manual.stdout

        listed = kiwi_ng('system', 'boxbuild', '--list-boxes')
        assert listed.returncode == 0, listed.stdout + listed.stderr
        with open(os.path.join(PROJECT, 'kiwi_boxed_plugin', 'kiwi_boxed_plugin.yml')) as handle:
            boxes = [box['name'] for box in yaml.safe_load(handle)['box']]
        lines = listed.stdout.splitlines()
        header = [line.split()[0] for line in lines].index('BOX')
        rows = lines[header:]
        assert [row.split()[0] for row in rows[1:]] == boxes
        assert all(row.split()[-1] == 'packaged' for row in rows[1:])
