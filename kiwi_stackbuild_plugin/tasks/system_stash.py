"""
usage: kiwi-ng system stash -h | --help
       kiwi-ng system stash --root=<directory>
           [--tag=<name>]
           [--container-name=<name>]
           [--push=<registry>]
           [--registry-auth-file=<file>]
           [--tls-verify | --no-tls-verify]
       kiwi-ng system stash --list
       kiwi-ng system stash help

commands:
    stash
        store a root tree built by kiwi as an OCI container image
        in the local container storage. Stashing the same name
        again adds a layer that holds only what changed.
    stash help
        show the manual page of the stash command

options:
    --root=<directory>
        the root tree, usually the image-root of a former
        'kiwi-ng system prepare' or 'system build'
    --tag=<name>
        the tag of the stash. Default: latest
    --container-name=<name>
        the name of the stash. Default: the image name of the
        description stored in the root (image/config.xml)
    --push=<registry>
        also push the stash to this registry, e.g.
        localhost:5000/stashes
    --registry-auth-file=<file>
        podman auth file with the registry credentials
    --tls-verify
        verify the registry's TLS certificate (the default)
    --no-tls-verify
        do not verify the registry's TLS certificate
    --list
        list the stashes: name, tag, size, creation time,
        architecture and source description
"""
import logging

from kiwi.help import Help
from kiwi.tasks.base import CliTask

from kiwi_plugin_support import usage

log = logging.getLogger('kiwi')

usage.register(__doc__ or '', 'system stash')


class SystemStashTask(CliTask):
    """
    Implements the stash command: validate and hand on
    """
    def process(self) -> None:
        if self.command_args['help']:
            Help().show('kiwi::system::stash')
            return
        from kiwi_stackbuild_plugin.stash_command import run_stash
        run_stash(self.command_args, self.global_args)
