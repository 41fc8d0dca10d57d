"""
usage: kiwi-ng system stackbuild -h | --help
       kiwi-ng system stackbuild --stash=<name>... --target-dir=<directory>
           [--description=<directory>]
           [--from-registry=<URI>]
           [--registry-auth-file=<file>]
           [--tls-verify | --no-tls-verify]
           [-- <kiwi_command_args>...]
       kiwi-ng system stackbuild help

commands:
    stackbuild
        stack one or more stashes, in the order given, into the
        root tree <target-dir>/build/image-root. Without a
        description, rebuild the image from the description stored
        in the stacked root ('kiwi-ng system create'); with one,
        build that description on top of the stacked root
        ('kiwi-ng system build --allow-existing-root').
    stackbuild help
        show the manual page of the stackbuild command

options:
    --stash=<name>...
        a stash, see 'kiwi-ng system stash --list'. Give it several
        times to stack stashes: later ones win. NAME:TAG and
        NAME@sha256:DIGEST select a tag or pin a digest
    --target-dir=<directory>
        where the stacked root and the image go
    --description=<directory>
        build this description on top of the stacked root
    --from-registry=<URI>
        pull the stashes from this registry first, e.g.
        localhost:5000/stashes
    --registry-auth-file=<file>
        podman auth file with the registry credentials
    --tls-verify
        verify the registry's TLS certificate (the default)
    --no-tls-verify
        do not verify the registry's TLS certificate
    -- <kiwi_command_args>...
        further arguments of 'kiwi-ng system create' (rebuild) or
        'kiwi-ng system build' (with --description)
"""
import logging

from kiwi.help import Help
from kiwi.tasks.base import CliTask

from kiwi_plugin_support import usage

log = logging.getLogger('kiwi')

# The stashes are stacked in the order typed, and docopt gives
# '--stash' exactly as typed, repeats included, as long as it stands in
# one usage line only: docopt 0.6.2 and docopt-ng add to a repeated
# option's value in place, so a second usage line holding '--stash'
# would match the same arguments again and return a, b, c, b, c for
# a, b, c. Keep '--stash' in a single line.
usage.register(__doc__ or '', 'system stackbuild', passthrough_to='system build')


class SystemStackbuildTask(CliTask):
    """
    Implements the stackbuild command: validate and hand on
    """
    def process(self) -> None:
        if self.command_args['help']:
            Help().show('kiwi::system::stackbuild')
            return
        from kiwi_stackbuild_plugin.stackbuild_command import run_stackbuild
        run_stackbuild(self.command_args, self.global_args)
