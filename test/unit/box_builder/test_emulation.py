"""
box_builder.emulation: another architecture's programs in the chroot,
through qemu-user and binfmt_misc
"""
import os
import subprocess

import pytest

from kiwi_boxed_plugin.binfmt import parse_handler

from box_builder import emulation
from box_builder.emulation import (
    binfmt_mounted, renamed_rule, sweep_stale_handlers, usable_in_chroot, user_emulation,
)
from box_builder.errors import BoxBuildError

# /usr/lib/binfmt.d/qemu-aarch64.conf of Debian's qemu-user-static
MAGIC = r'\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
MASK = r'\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
INTERPRETER = '/usr/libexec/qemu-binfmt/aarch64-binfmt-P'
RULE = f':qemu-aarch64:M::{MAGIC}:{MASK}:{INTERPRETER}:OPF\n'
# /proc/sys/fs/binfmt_misc/qemu-aarch64 with that rule registered
HANDLER = (
    'enabled\n'
    f'interpreter {INTERPRETER}\n'
    'flags: POF\n'
    'offset 0\n'
    'magic 7f454c460201010000000000000000000200b700\n'
    'mask ffffffffffffff00fffffffffffffffffeffffff\n'
)
OUR_HANDLER = f'kiwi-box-aarch64-{os.getpid()}'


class TestUsableInChroot:
    @pytest.mark.parametrize('text, usable', [
        (HANDLER, True),
        (HANDLER.replace('enabled', 'disabled'), False),
        (HANDLER.replace('flags: POF', 'flags: PO'), False),
        (HANDLER.replace('flags: POF\n', ''), False),
        # a handler by file name extension runs no architecture
        ('enabled\ninterpreter /usr/bin/python3.11\nflags: F\nextension .pyc\n', False),
    ])
    def test_enabled_with_the_f_flag(self, text, usable):
        assert usable_in_chroot(parse_handler('qemu-aarch64', text)) is usable


class TestRenamedRule:
    def test_the_first_field_gets_the_name(self):
        assert renamed_rule(RULE, 'kiwi-box-aarch64-7') == \
            f':kiwi-box-aarch64-7:M::{MAGIC}:{MASK}:{INTERPRETER}:OPF'

    def test_any_delimiter(self):
        assert renamed_rule('#qemu-x#M##ab#ff#/usr/bin/q#F\n', 'ours') == \
            '#ours#M##ab#ff#/usr/bin/q#F'

    @pytest.mark.parametrize('rule', [
        # no F flag: the interpreter would be looked up in the chroot
        ':python3.11:M::\\xa7\\x0d\\x0d\\x0a::/usr/bin/python3.11:\n',
        RULE.replace(':OPF', ':OP'),
        # too few fields
        f':qemu-aarch64:M::{MAGIC}:{MASK}:{INTERPRETER}\n',
        ':qemu-aarch64:F\n',
        ' \n',
        '',
    ])
    def test_refuses_what_qemu_user_static_does_not_ship(self, rule):
        with pytest.raises(BoxBuildError, match='reinstall qemu-user-static'):
            renamed_rule(rule, 'ours')


@pytest.fixture
def tools(mocker):
    """
    mount and umount replaced: nothing of the host's is touched
    """
    return {
        name: mocker.patch.object(emulation, name) for name in ('run', 'unmount')
    }


@pytest.fixture
def binfmt(tmp_path):
    """
    A stand-in for a mounted /proc/sys/fs/binfmt_misc
    """
    directory = tmp_path / 'binfmt_misc'
    directory.mkdir()
    (directory / 'register').write_text('')
    return directory


@pytest.fixture
def rules(tmp_path):
    """
    A stand-in for /usr/lib/binfmt.d with qemu-user-static's rule
    """
    directory = tmp_path / 'binfmt.d'
    directory.mkdir()
    (directory / 'qemu-aarch64.conf').write_text(RULE)
    return directory


class TestBinfmtMounted:
    def test_mounted_already_stays_as_it_is(self, tools, binfmt):
        with binfmt_mounted(str(binfmt)):
            pass
        tools['run'].assert_not_called()
        tools['unmount'].assert_not_called()

    def test_mounted_for_the_block_and_unmounted_after(self, tools, tmp_path):
        directory = str(tmp_path / 'binfmt_misc')
        with binfmt_mounted(directory):
            tools['run'].assert_called_once_with(
                ['mount', '-t', 'binfmt_misc', 'binfmt_misc', directory]
            )
            tools['unmount'].assert_not_called()
        tools['unmount'].assert_called_once_with(directory)

    def test_unmounted_after_a_failed_block(self, tools, tmp_path):
        directory = str(tmp_path / 'binfmt_misc')
        with pytest.raises(RuntimeError):
            with binfmt_mounted(directory):
                raise RuntimeError('build failed')
        tools['unmount'].assert_called_once_with(directory)


class TestUserEmulation:
    def test_nothing_to_do_on_a_host_of_the_arch(self, tools, tmp_path):
        before = sorted(os.listdir(tmp_path))
        with user_emulation(
            'aarch64', 'aarch64', str(tmp_path / 'binfmt.d'), str(tmp_path / 'binfmt_misc')
        ):
            pass
        assert sorted(os.listdir(tmp_path)) == before
        tools['run'].assert_not_called()

    def test_the_host_is_this_machine_unless_given(self, tools, binfmt, mocker):
        mocker.patch.object(emulation.platform, 'machine', return_value='aarch64')
        with user_emulation('aarch64', rules_dir='/nonexistent', directory=str(binfmt)):
            pass
        assert sorted(os.listdir(binfmt)) == ['register']
        assert (binfmt / 'register').read_text() == ''

    def test_without_qemu_user_static(self, tools, binfmt, tmp_path):
        with pytest.raises(BoxBuildError, match='install qemu-user-static') as issue:
            with user_emulation('aarch64', 'x86_64', str(tmp_path / 'none'), str(binfmt)):
                pytest.fail('the block ran without emulation')
        assert 'aarch64' in str(issue.value)
        assert (binfmt / 'register').read_text() == ''
        tools['run'].assert_not_called()

    def test_the_hosts_handler_usable_in_a_chroot_is_used(self, tools, binfmt, rules):
        (binfmt / 'qemu-aarch64').write_text(HANDLER)
        with user_emulation('aarch64', 'x86_64', str(rules), str(binfmt)):
            pass
        assert (binfmt / 'register').read_text() == ''
        assert (binfmt / 'qemu-aarch64').read_text() == HANDLER
        assert sorted(os.listdir(binfmt)) == ['qemu-aarch64', 'register']
        tools['run'].assert_not_called()
        tools['unmount'].assert_not_called()

    @pytest.mark.parametrize('host_handler', [
        None,
        # without F: the interpreter would be looked up in the chroot
        HANDLER.replace('flags: POF', 'flags: PO'),
        HANDLER.replace('enabled', 'disabled'),
    ])
    def test_else_one_of_ours_for_the_block(self, tools, binfmt, rules, host_handler):
        if host_handler is not None:
            (binfmt / 'qemu-aarch64').write_text(host_handler)
        with user_emulation('aarch64', 'x86_64', str(rules), str(binfmt)):
            assert (binfmt / 'register').read_text() == renamed_rule(RULE, OUR_HANDLER)
            assert not (binfmt / OUR_HANDLER).exists()
        # writing -1 removes the handler
        assert (binfmt / OUR_HANDLER).read_text() == '-1'
        if host_handler is not None:
            assert (binfmt / 'qemu-aarch64').read_text() == host_handler
        tools['run'].assert_not_called()
        tools['unmount'].assert_not_called()

    def test_ours_is_removed_after_a_failed_block(self, tools, binfmt, rules):
        with pytest.raises(BoxBuildError, match='debootstrap failed'):
            with user_emulation('aarch64', 'x86_64', str(rules), str(binfmt)):
                raise BoxBuildError('debootstrap failed with exit code 1')
        assert (binfmt / 'register').read_text().startswith(f':{OUR_HANDLER}:M::')
        assert (binfmt / OUR_HANDLER).read_text() == '-1'

    def test_binfmt_misc_mounted_for_the_block_if_it_was_not(self, tools, tmp_path, rules):
        directory = tmp_path / 'binfmt_misc'
        directory.mkdir()

        def mount(argv):
            # what mounting binfmt_misc shows
            (directory / 'register').write_text('')
        tools['run'].side_effect = mount
        with user_emulation('aarch64', 'x86_64', str(rules), str(directory)):
            assert (directory / 'register').read_text() == renamed_rule(RULE, OUR_HANDLER)
            tools['unmount'].assert_not_called()
        assert tools['run'].call_args.args[0][:2] == ['mount', '-t']
        assert (directory / OUR_HANDLER).read_text() == '-1'
        tools['unmount'].assert_called_once_with(str(directory))


def gone_pid() -> int:
    """
    The pid of a process that has ended
    """
    process = subprocess.Popen(['true'])
    process.wait()
    return process.pid


class TestSweepStaleHandlers:
    def test_handlers_of_killed_builds_are_removed(self, binfmt):
        stale = f'kiwi-box-aarch64-{gone_pid()}'
        alive = f'kiwi-box-aarch64-{os.getpid()}'
        for name in (stale, alive, 'qemu-aarch64', 'kiwi-box-aarch64-x'):
            (binfmt / name).write_text(HANDLER)
        sweep_stale_handlers(str(binfmt))
        assert (binfmt / stale).read_text() == '-1'
        for name in (alive, 'qemu-aarch64', 'kiwi-box-aarch64-x'):
            assert (binfmt / name).read_text() == HANDLER

    def test_user_emulation_sweeps_first(self, tools, binfmt, rules):
        stale = f'kiwi-box-aarch64-{gone_pid()}'
        (binfmt / stale).write_text(HANDLER)
        with user_emulation('aarch64', 'x86_64', str(rules), str(binfmt)):
            assert (binfmt / stale).read_text() == '-1'
