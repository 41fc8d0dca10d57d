"""
usage: kiwi-ng system boxbuild -h | --help
       kiwi-ng system boxbuild --box=<name>
           [--box-memory=<vmgb>]
           [--box-console=<ttyname>]
           [--box-smp-cpus=<number>]
           [--box-debug]
           [--box-timeout=<minutes>]
           [--container]
           [--keep-image-root]
           [--kiwi-version=<version>]
           [--shared-path=<path>]
           [--no-update-check]
           [--no-snapshot]
           [--no-accel]
           [--9p-sharing | --virtiofs-sharing | --sshfs-sharing]
           [--ssh-key=<name>]
           [--ssh-port=<port>]
           [--x86_64 | --aarch64 | --box-arch=<arch>]
           [--machine=<qemu_machine>]
           [--cpu=<qemu_cpu>]
           -- <kiwi_build_command_args>...
       kiwi-ng system boxbuild --list-boxes
       kiwi-ng system boxbuild help

commands:
    boxbuild
        run 'kiwi-ng system build' inside a box: a small virtual
        machine, or a container with --container, that carries kiwi
        and every tool an image build needs. The arguments after '--'
        are those of 'kiwi-ng system build'; the description and
        target directories given there are shared with the box.
    boxbuild help
        show the manual page of the boxbuild command

options:
    --box=<name>
        name of the box to build in, see --list-boxes
    --list-boxes
        list the boxes of the catalog with their architectures,
        memory, cpus and whether they are cached here
    --box-memory=<vmgb>
        memory of the box: 8G, 8096M, or a bare number of GiB.
        Default: what the box declares
    --box-console=<ttyname>
        console device of the box kernel. Default: what the box
        declares, usually hvc0
    --box-smp-cpus=<number>
        number of virtual cpus. Default: what the box declares,
        at most the host's cpus
    --box-debug
        keep the box running after the build, with an interactive
        console on this terminal; Ctrl-a x ends the box
    --box-timeout=<minutes>
        stop the box and fail if the build has not ended this many
        minutes after the box started. Default: no limit (a box that
        has not started its job after 600 s, or after
        $KIWI_BOXED_START_TIMEOUT s, is stopped either way)
    --container
        run the box's container image under podman instead of a
        virtual machine; the VM options have no effect then
    --keep-image-root
        with --container: leave the build's root tree in
        <target-dir>/build/image-root, with its owners, modes, links
        and xattrs, e.g. for 'kiwi-ng system stash'
    --kiwi-version=<version>
        install this kiwi version from PyPI in the box before the
        build
    --shared-path=<path>
        an extra host directory to share with the box, visible at
        the same path inside
    --no-update-check
        use the cached box as it is; a first download is still
        verified
    --no-snapshot
        write changes into the cached box disk instead of a
        throw-away overlay
    --no-accel
        use software emulation even if KVM is usable. Without it KVM
        is used when /dev/kvm is accessible and runs a probe guest at
        full speed; a box that stays silent under KVM is started
        again under software emulation
    --9p-sharing
        share directories with the box through 9p (the default)
    --virtiofs-sharing
        share directories with the box through virtiofs
    --sshfs-sharing
        let the box mount the directories over ssh from this host:
        an sshd of this run only that serves nothing but the shares
        (see the man page for how a published box reaches it)
    --ssh-key=<name>
        authorize the public key ~/.ssh/<name>.pub for logging into
        the box as root; the box's ssh port is then forwarded from
        127.0.0.1 (see --ssh-port)
    --ssh-port=<port>
        the port of 127.0.0.1 forwarded to the box's ssh port.
        Default: a free port, when a login is wanted at all
    --x86_64
        use the x86_64 box
    --aarch64
        use the aarch64 box
    --box-arch=<arch>
        use the box of this architecture: x86_64, aarch64, s390x,
        ppc64 or ppc64le. Default: the host architecture
    --machine=<qemu_machine>
        qemu machine type. Default: chosen per architecture
    --cpu=<qemu_cpu>
        qemu cpu model. Default: host with KVM, max otherwise
    -- <kiwi_build_command_args>...
        the arguments of 'kiwi-ng system build', among them
        --description and --target-dir
"""
import logging

from kiwi.help import Help
from kiwi.tasks.base import CliTask

from kiwi_plugin_support import usage

log = logging.getLogger('kiwi')

usage.register(__doc__ or '', 'system boxbuild', passthrough_to='system build')


class SystemBoxbuildTask(CliTask):
    """
    Implements the boxbuild command: validate and hand on
    """
    def process(self) -> None:
        if self.command_args['help']:
            Help().show('kiwi::system::boxbuild')
            return
        if self.command_args['--list-boxes']:
            from kiwi_boxed_plugin.box_listing import print_box_list
            print_box_list()
            return
        from kiwi_boxed_plugin.boxbuild import run_boxbuild
        run_boxbuild(self.command_args, self.global_args)
