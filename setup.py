"""One distribution for the kiwi boxed and stackbuild plugins."""
import os
from glob import glob

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version() -> str:
    scope: dict = {}
    with open(os.path.join(HERE, 'kiwi_plugin_support', 'version.py')) as handle:
        exec(handle.read(), scope)
    return scope['__version__']


with open(os.path.join(HERE, 'README.rst')) as readme:
    long_description = readme.read()

setup(
    name='kiwi-plugins',
    version=read_version(),
    description='KIWI NG plugins: boxbuild, stash and stackbuild',
    long_description=long_description,
    long_description_content_type='text/x-rst',
    license='GPLv3+',
    python_requires='>=3.9',
    packages=find_packages(include=['kiwi_*']),
    package_data={
        'kiwi_boxed_plugin': ['kiwi_boxed_plugin.yml', 'agent/*'],
    },
    # man pages are built from doc/source before the sdist (package/
    # release-check dist); the sdist carries them, so wheel, rpm and deb
    # get them without sphinx
    data_files=[('share/man/man8', sorted(glob('doc/build/man/*.8')))],
    # docopt is not listed: kiwi 9.24 brings docopt, kiwi 10 docopt-ng,
    # and both install the module 'docopt'
    install_requires=[
        'kiwi>=9.24,<11',
        'PyYAML',
        'requests',
        'progressbar2',
    ],
    entry_points={
        'kiwi.tasks': [
            'system_boxbuild=kiwi_boxed_plugin.tasks.system_boxbuild',
            'system_stash=kiwi_stackbuild_plugin.tasks.system_stash',
            'system_stackbuild=kiwi_stackbuild_plugin.tasks.system_stackbuild',
        ]
    },
    classifiers=[
        'Development Status :: 4 - Beta',
        'Intended Audience :: Developers',
        'License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)',
        'Operating System :: POSIX :: Linux',
        'Programming Language :: Python :: 3',
        'Topic :: System :: Operating System',
    ],
)
