import os
from dataclasses import replace

import pytest

from kiwi_boxed_plugin.agent.kiwi_box_protocol import BoxJob
from kiwi_boxed_plugin.exceptions import KiwiBoxProtocolError
from kiwi_boxed_plugin.qemu import (
    QEMU_ARCHES,
    BoxMachine,
    find_qemu_binary,
    kernel_cmdline,
    qemu_argv,
    snapshot_overlay,
    stream_netdev,
    user_netdev,
)
from kiwi_plugin_support.exceptions import KiwiPluginToolMissingError

MACHINE = BoxMachine(
    arch='x86_64', accel='tcg', machine='', cpu='', memory_mb=4096, cpus=2,
    kernel='/cache/tmp/kernel.x86_64', initrd='/cache/tmp/initrd.x86_64',
    disk='/cache/tmp/system-overlay.qcow2', interactive=False, netdev='user,id=net',
    share_args=('-fsdev', 'local,id=x', '-device', 'y')
)
BUILD = ('system', 'build')


def option(argv, name):
    """
    The values of every occurrence of a qemu option
    """
    return [argv[index + 1] for index, word in enumerate(argv) if word == name]


class TestQemuArgv:
    def test_x86_64_software(self):
        argv = qemu_argv('/usr/bin/qemu-system-x86_64', MACHINE, 'root=/dev/vda1')
        assert argv[0] == '/usr/bin/qemu-system-x86_64'
        assert option(argv, '-machine') == ['q35']
        assert option(argv, '-accel') == ['tcg']
        # no byte-wise rep movsb/stosb, no AVX string functions for TCG
        assert option(argv, '-cpu') == ['max,erms=off,avx=off,avx2=off']
        assert option(argv, '-smp') == ['2']
        # memory always carries its unit: a bare number would be MiB to qemu
        assert option(argv, '-m') == ['4096M']
        assert option(argv, '-kernel') == ['/cache/tmp/kernel.x86_64']
        assert option(argv, '-initrd') == ['/cache/tmp/initrd.x86_64']
        assert option(argv, '-append') == ['root=/dev/vda1']
        assert option(argv, '-drive') == [
            'file=/cache/tmp/system-overlay.qcow2,if=none,id=system,format=qcow2,discard=unmap'
        ]
        assert option(argv, '-device') == [
            'virtio-blk-pci,drive=system', 'virtio-net-pci,netdev=net',
            'virtio-serial-pci', 'virtconsole,chardev=console', 'y'
        ]
        assert option(argv, '-netdev') == ['user,id=net']
        assert option(argv, '-chardev') == ['stdio,id=console,signal=off']
        assert '-no-reboot' in argv and '-nodefaults' in argv
        assert argv[-4:] == ['-fsdev', 'local,id=x', '-device', 'y']

    def test_throwaway_overlay_ignores_flushes(self):
        argv = qemu_argv('qemu', replace(MACHINE, throwaway_disk=True), '')
        assert option(argv, '-drive') == [
            'file=/cache/tmp/system-overlay.qcow2,if=none,id=system,format=qcow2,'
            'discard=unmap,cache=unsafe'
        ]

    def test_kvm_uses_host_cpu(self):
        argv = qemu_argv('qemu', replace(MACHINE, accel='kvm'), '')
        assert option(argv, '-accel') == ['kvm']
        assert option(argv, '-cpu') == ['host']

    def test_aarch64_software(self):
        """
        TCG's emulation of the architecture's pointer authentication
        cipher is slow: qemu's own one boots the box faster
        """
        argv = qemu_argv('qemu', replace(MACHINE, arch='aarch64'), '')
        assert option(argv, '-machine') == ['virt']
        assert option(argv, '-accel') == ['tcg']
        assert option(argv, '-cpu') == ['max,pauth-impdef=on']

    def test_aarch64_kvm_uses_host_cpu(self):
        argv = qemu_argv('qemu', replace(MACHINE, arch='aarch64', accel='kvm'), '')
        assert option(argv, '-machine') == ['virt']
        assert option(argv, '-accel') == ['kvm']
        assert option(argv, '-cpu') == ['host']

    def test_user_machine_and_cpu(self):
        argv = qemu_argv('qemu', replace(MACHINE, machine='pc', cpu='Haswell'), '')
        assert option(argv, '-machine') == ['pc']
        assert option(argv, '-cpu') == ['Haswell']

    def test_no_initrd(self):
        argv = qemu_argv('qemu', replace(MACHINE, initrd=''), '')
        assert '-initrd' not in argv

    def test_interactive_console(self):
        argv = qemu_argv('qemu', replace(MACHINE, interactive=True), '')
        assert option(argv, '-chardev') == ['stdio,id=console,signal=off,mux=on']

    def test_shared_memory_for_vhost_user(self):
        argv = qemu_argv('qemu', replace(MACHINE, shared_memory=True), '')
        assert option(argv, '-machine') == ['q35,memory-backend=box_memory']
        assert option(argv, '-object') == [
            'memory-backend-memfd,id=box_memory,size=4096M,share=on'
        ]

    def test_netdev(self):
        machine = replace(MACHINE, netdev=stream_netdev('/run/x/passt.socket'))
        argv = qemu_argv('qemu', machine, '')
        assert option(argv, '-netdev') == [
            'stream,id=net,server=off,addr.type=unix,addr.path=/run/x/passt.socket'
        ]
        assert 'virtio-net-pci,netdev=net' in option(argv, '-device')


class TestNetdev:
    def test_user_network_forwards_into_the_box(self):
        assert user_netdev([]) == 'user,id=net'
        assert user_netdev([(4444, 22)]) == 'user,id=net,hostfwd=tcp:127.0.0.1:4444-:22'

    def test_stream_socket_with_comma(self):
        assert stream_netdev('/tmp/a,b/passt.socket') == (
            'stream,id=net,server=off,addr.type=unix,addr.path=/tmp/a,,b/passt.socket'
        )

    def test_disk_path_with_comma_and_shell_text(self):
        odd = '/cache/a b,c/$(touch X)/disk.qcow2'
        argv = qemu_argv('qemu', replace(MACHINE, disk=odd), '')
        assert option(argv, '-drive')[0].startswith(
            'file=/cache/a b,,c/$(touch X)/disk.qcow2,if=none'
        )

    @pytest.mark.parametrize('arch,machine,cpu,bus', [
        ('aarch64', 'virt', 'max,pauth-impdef=on', 'pci'),
        ('s390x', 's390-ccw-virtio', 'max', 'ccw'),
        ('ppc64le', 'pseries', 'power9', 'pci'),
        ('ppc64', 'pseries', 'power9', 'pci'),
    ])
    def test_other_arches(self, arch, machine, cpu, bus):
        argv = qemu_argv('qemu', replace(MACHINE, arch=arch), '')
        assert option(argv, '-machine') == [machine]
        assert option(argv, '-cpu') == [cpu]
        assert f'virtio-blk-{bus},drive=system' in option(argv, '-device')
        assert f'virtio-serial-{bus}' in option(argv, '-device')

    def test_every_arch_has_a_package(self):
        for arch in QEMU_ARCHES.values():
            assert arch.package.startswith('qemu-system-')


class TestKernelCmdline:
    def test_whole_line(self):
        job = BoxJob(
            kiwi_args=('--debug', 'system', 'build', '--add-package=vim'),
            sharing_backend='9p', custom_mount='/srv/data', kiwi_version='10.2.3',
            no_halt=True
        )
        assert kernel_cmdline('x86_64', ['root=/dev/vda1', 'rw'], 'hvc0', job) == (
            'root=/dev/vda1 rw console=hvc0 panic=5 sharing_backend=_9p_ '
            'custom_mount=_/srv/data_ kiwi_version=_10.2.3_ kiwi-no-halt '
            'kiwi="--debug system build --add-package=vim"'
        )

    def test_minimal(self):
        job = BoxJob(kiwi_args=BUILD, sharing_backend='9p')
        assert kernel_cmdline('x86_64', [], 'ttyS0', job) == (
            'console=ttyS0 panic=5 sharing_backend=_9p_ kiwi="system build"'
        )

    def test_every_box_gets_panic(self):
        """
        The published boxes set no panic=: a kernel panic would hang
        the box for good; with panic= and -no-reboot qemu ends
        """
        job = BoxJob(kiwi_args=BUILD)
        cmdline = kernel_cmdline('x86_64', ['root=/dev/vda3', 'rd.plymouth=0'], 'hvc0', job)
        assert cmdline.split()[:4] == ['root=/dev/vda3', 'rd.plymouth=0', 'console=hvc0', 'panic=5']
        assert '-no-reboot' in qemu_argv('qemu', MACHINE, cmdline)

    def test_panic_of_the_catalog_kept(self):
        job = BoxJob(kiwi_args=BUILD)
        cmdline = kernel_cmdline('x86_64', ['root=/dev/vda1', 'panic=-1'], 'hvc0', job)
        assert cmdline.split()[:3] == ['root=/dev/vda1', 'panic=-1', 'console=hvc0']
        assert cmdline.count('panic=') == 1

    def test_emulated_x86_64_box_is_spared_dear_work(self):
        job = BoxJob(kiwi_args=BUILD)
        cmdline = kernel_cmdline('x86_64', ['root=/dev/vda1'], 'hvc0', job, emulated=True)
        assert cmdline.split()[:5] == [
            'clocksource=tsc', 'tsc=reliable', 'init_on_alloc=0', 'root=/dev/vda1', 'console=hvc0'
        ]

    def test_kvm_box_gets_no_emulation_arguments(self):
        job = BoxJob(kiwi_args=BUILD)
        cmdline = kernel_cmdline('x86_64', ['root=/dev/vda1'], 'hvc0', job, emulated=False)
        assert 'clocksource' not in cmdline and 'init_on_alloc' not in cmdline

    def test_emulated_aarch64_box_keeps_its_timer(self):
        # the arm64 kernel reads the generic timer, no HPET to avoid
        job = BoxJob(kiwi_args=BUILD)
        cmdline = kernel_cmdline('aarch64', ['root=/dev/vda1'], 'hvc0', job, emulated=True)
        assert cmdline.split()[:2] == ['init_on_alloc=0', 'root=/dev/vda1']
        assert 'clocksource' not in cmdline

    def test_catalog_arguments_come_last_and_win(self):
        # the kernel takes the last of two same arguments
        job = BoxJob(kiwi_args=BUILD)
        words = kernel_cmdline(
            'x86_64', ['clocksource=hpet', 'init_on_alloc=1'], 'hvc0', job, emulated=True
        ).split()
        assert words.index('clocksource=hpet') > words.index('clocksource=tsc')
        assert words.index('init_on_alloc=1') > words.index('init_on_alloc=0')

    def test_refuses_quote(self):
        with pytest.raises(KiwiBoxProtocolError, match='contains a'):
            kernel_cmdline('x86_64', [], 'hvc0', BoxJob(kiwi_args=BUILD + ('a"b',)))

    def test_length_limit_per_arch(self):
        package = '--add-package=' + 'p' * 100
        job = BoxJob(kiwi_args=BUILD + (package,) * 25)
        with pytest.raises(KiwiBoxProtocolError, match='the x86_64 kernel takes 2047'):
            kernel_cmdline('x86_64', [], 'hvc0', job)
        # s390x kernels take twice as much
        assert kernel_cmdline('s390x', [], 'hvc0', job)

    def test_exactly_at_limit(self):
        base = kernel_cmdline('x86_64', [], 'hvc0', BoxJob(kiwi_args=BUILD))
        filler = 'x' * (2047 - len(base) - 1)
        line = kernel_cmdline('x86_64', [], 'hvc0', BoxJob(kiwi_args=BUILD + (filler,)))
        assert len(line) == 2047
        with pytest.raises(KiwiBoxProtocolError):
            kernel_cmdline('x86_64', [], 'hvc0', BoxJob(kiwi_args=BUILD + (filler + 'x',)))


class TestTools:
    def test_qemu_missing_names_package(self, mocker):
        mocker.patch('shutil.which', return_value=None)
        with pytest.raises(KiwiPluginToolMissingError, match='install qemu-system-arm'):
            find_qemu_binary('aarch64')

    def test_qemu_found(self, mocker):
        mocker.patch('shutil.which', return_value='/usr/bin/qemu-system-x86_64')
        assert find_qemu_binary('x86_64') == '/usr/bin/qemu-system-x86_64'

    def test_overlay_created_and_removed(self, tmp_path, mocker):
        mocker.patch('shutil.which', return_value='/usr/bin/qemu-img')

        def create(argv, **kwargs):
            open(argv[-1], 'w').close()
        run = mocker.patch('subprocess.run', side_effect=create)
        with snapshot_overlay('/cache/box/disk.qcow2', str(tmp_path)) as overlay:
            assert overlay == f'{tmp_path}/system-overlay.qcow2'
            assert os.path.exists(overlay)
        assert not os.path.exists(overlay)
        assert run.call_args[0][0] == [
            '/usr/bin/qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2',
            '-b', '/cache/box/disk.qcow2', overlay
        ]

    def test_overlay_needs_qemu_img(self, mocker, tmp_path):
        mocker.patch('shutil.which', return_value=None)
        with pytest.raises(KiwiPluginToolMissingError, match='qemu-utils'):
            with snapshot_overlay('/disk', str(tmp_path)):
                pass
