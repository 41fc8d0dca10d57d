"""
binfmt_misc handlers as the kernel shows them, and whether one of them
lets a container of another arch run through qemu-user. No test reads
the real /proc: a running box build may have registered a handler there.
"""
import os

import pytest

from kiwi_boxed_plugin.binfmt import (
    Handler,
    elf_header,
    emulation_problem,
    parse_handler,
    read_handlers,
)

# Debian's qemu-user-static handler of aarch64 programs, as
# /proc/sys/fs/binfmt_misc/qemu-aarch64 shows it
DEBIAN_AARCH64 = (
    'enabled\n'
    'interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\n'
    'flags: POF\n'
    'offset 0\n'
    'magic 7f454c460201010000000000000000000200b700\n'
    'mask ffffffffffffff00fffffffffffffffffeffffff\n'
)
PYTHON_EXTENSION = (
    'enabled\n'
    'interpreter /usr/bin/python3.11\n'
    'flags: \n'
    'extension .pyc\n'
)

# the rules of Debian's qemu-user-static in systemd's binfmt.d format
# (/usr/lib/binfmt.d/qemu-*.conf); x86_64's is only installed on hosts
# of other arches, it follows qemu's scripts/qemu-binfmt-conf.sh
BINFMT_D = {
    'aarch64':
        r':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00'
        r'\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff'
        r'\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:OPF',
    's390x':
        r':qemu-s390x:M::\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00'
        r'\x00\x02\x00\x16:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff'
        r'\xff\xfe\xff\xff:/usr/libexec/qemu-binfmt/s390x-binfmt-P:OPF',
    'x86_64':
        r':qemu-x86_64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00'
        r'\x02\x00\x3e\x00:\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff'
        r'\xfe\xff\xff\xff:/usr/libexec/qemu-binfmt/x86_64-binfmt-P:OPF',
    'ppc64le':
        r':qemu-ppc64le:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00'
        r'\x02\x00\x15\x00:\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff'
        r'\xfe\xff\xff\x00:/usr/libexec/qemu-binfmt/ppc64le-binfmt-P:OPF',
}
ARCHES = ('aarch64', 's390x', 'x86_64', 'ppc64le')


def shown(rule: str, enabled: bool = True, flags: str = '') -> str:
    """
    The text binfmt_misc shows for a handler registered with a binfmt.d
    rule of the magic kind

    :param str flags: instead of the rule's own
    """
    _, name, kind, offset, magic, mask, interpreter, rule_flags = rule.split(':')
    assert kind == 'M'
    magic_bytes = magic.encode().decode('unicode_escape').encode('latin-1')
    mask_bytes = mask.encode().decode('unicode_escape').encode('latin-1')
    assert len(magic_bytes) == len(mask_bytes)
    # the kernel lists the flags in its own order
    flags = ''.join(flag for flag in 'POCF' if flag in (flags or rule_flags))
    return (
        f"{'enabled' if enabled else 'disabled'}\n"
        f'interpreter {interpreter}\n'
        f'flags: {flags}\n'
        f'offset {offset or 0}\n'
        f'magic {magic_bytes.hex()}\n'
        f'mask {mask_bytes.hex()}\n'
    )


def binfmt_dir(tmp_path, handlers: dict, mounted: bool = True) -> str:
    """
    A directory laid out like /proc/sys/fs/binfmt_misc

    :param dict handlers: file name: text
    """
    directory = tmp_path / 'binfmt misc $(x)'
    directory.mkdir()
    if mounted:
        (directory / 'register').write_text('')
        (directory / 'status').write_text('enabled\n')
    for name, text in handlers.items():
        (directory / name).write_text(text)
    return str(directory)


class TestElfHeader:
    def test_aarch64(self):
        assert elf_header('aarch64') == bytes.fromhex(
            '7f454c46' '02' '01' '01' '000000000000000000' '0200' 'b700'
        )

    def test_x86_64(self):
        assert elf_header('x86_64') == bytes.fromhex(
            '7f454c46' '02' '01' '01' '000000000000000000' '0200' '3e00'
        )

    def test_s390x_is_big_endian(self):
        assert elf_header('s390x') == bytes.fromhex(
            '7f454c46' '02' '02' '01' '000000000000000000' '0002' '0016'
        )

    @pytest.mark.parametrize('arch', ARCHES)
    def test_length(self, arch):
        assert len(elf_header(arch)) == 20


class TestParseHandler:
    def test_debian_qemu_aarch64(self):
        handler = parse_handler('qemu-aarch64', DEBIAN_AARCH64)
        assert handler == Handler(
            name='qemu-aarch64', enabled=True, flags='POF', offset=0,
            magic=bytes.fromhex('7f454c460201010000000000000000000200b700'),
            mask=bytes.fromhex('ffffffffffffff00fffffffffffffffffeffffff')
        )
        assert handler.matches(elf_header('aarch64'))
        assert not handler.matches(elf_header('x86_64'))
        assert not handler.matches(elf_header('s390x'))

    def test_extension_handler_is_left_out(self):
        assert parse_handler('python3.11', PYTHON_EXTENSION) is None

    def test_disabled(self):
        text = DEBIAN_AARCH64.replace('enabled', 'disabled', 1)
        handler = parse_handler('qemu-aarch64', text)
        assert handler is not None
        assert not handler.enabled
        assert handler.flags == 'POF'

    def test_no_flags(self):
        handler = parse_handler('qemu-aarch64', DEBIAN_AARCH64.replace('POF', ''))
        assert handler is not None
        assert handler.flags == ''

    def test_without_mask_every_bit_counts(self):
        text = '\n'.join(
            line for line in DEBIAN_AARCH64.splitlines() if not line.startswith('mask')
        )
        handler = parse_handler('qemu-aarch64', text)
        assert handler is not None
        assert handler.mask == b'\xff' * 20
        assert handler.matches(elf_header('aarch64'))
        # a shared object: e_type 3, which Debian's mask lets through
        shared_object = bytearray(elf_header('aarch64'))
        shared_object[16] = 3
        assert not handler.matches(bytes(shared_object))
        assert parse_handler('qemu-aarch64', DEBIAN_AARCH64).matches(bytes(shared_object))


class TestMatches:
    @pytest.mark.parametrize('arch', ARCHES)
    def test_each_rule_matches_only_its_arch(self, arch):
        handler = parse_handler(f'qemu-{arch}', shown(BINFMT_D[arch]))
        assert handler is not None
        assert [other for other in ARCHES if handler.matches(elf_header(other))] == [arch]

    def test_s390x_rule_read_from_the_host(self):
        """
        The rule as this host's qemu-user-static ships it, if it does
        """
        path = '/usr/lib/binfmt.d/qemu-s390x.conf'
        if not os.path.exists(path):
            pytest.skip(f'no {path}')
        with open(path) as conf:
            rule = conf.read().strip()
        handler = parse_handler('qemu-s390x', shown(rule))
        assert handler is not None
        assert [arch for arch in ARCHES if handler.matches(elf_header(arch))] == ['s390x']

    def test_offset(self):
        handler = Handler(
            name='x', enabled=True, flags='F', offset=18, magic=b'\xb7\x00',
            mask=b'\xff\xff'
        )
        assert handler.matches(elf_header('aarch64'))
        assert not handler.matches(elf_header('x86_64'))

    def test_header_too_short(self):
        handler = parse_handler('qemu-aarch64', DEBIAN_AARCH64)
        assert handler is not None
        assert not handler.matches(elf_header('aarch64')[:19])
        assert not handler.matches(b'')


class TestReadHandlers:
    def test_skips_control_files_and_sorts(self, tmp_path):
        directory = binfmt_dir(tmp_path, {
            'qemu-s390x': shown(BINFMT_D['s390x']),
            'python3.11': PYTHON_EXTENSION,
            'qemu-aarch64': DEBIAN_AARCH64,
            'kiwi-box-aarch64-1': shown(BINFMT_D['aarch64'], enabled=False),
        })
        handlers = read_handlers(directory)
        assert [handler.name for handler in handlers] == [
            'kiwi-box-aarch64-1', 'qemu-aarch64', 'qemu-s390x'
        ]

    def test_control_files_are_not_read(self, tmp_path, mocker):
        """
        register is write-only and status is no handler
        """
        directory = binfmt_dir(tmp_path, {'qemu-aarch64': DEBIAN_AARCH64})
        opened = mocker.patch('builtins.open', wraps=open)
        assert [handler.name for handler in read_handlers(directory)] == ['qemu-aarch64']
        assert [os.path.basename(call.args[0]) for call in opened.call_args_list] == [
            'qemu-aarch64'
        ]

    def test_not_mounted(self, tmp_path):
        directory = binfmt_dir(tmp_path, {'qemu-aarch64': DEBIAN_AARCH64}, mounted=False)
        assert read_handlers(directory) == []


class TestEmulationProblem:
    def test_not_mounted(self, tmp_path):
        directory = binfmt_dir(tmp_path, {}, mounted=False)
        problem = emulation_problem('aarch64', directory)
        assert 'binfmt_misc is not mounted' in problem
        assert directory in problem

    def test_switched_off(self, tmp_path):
        directory = binfmt_dir(tmp_path, {'qemu-aarch64': DEBIAN_AARCH64})
        with open(os.path.join(directory, 'status'), 'w') as status:
            status.write('disabled\n')
        assert 'binfmt_misc is switched off' in emulation_problem('aarch64', directory)

    def test_no_handler(self, tmp_path):
        directory = binfmt_dir(tmp_path, {'python3.11': PYTHON_EXTENSION})
        assert emulation_problem('aarch64', directory) == \
            'no enabled binfmt_misc handler runs aarch64 programs'

    def test_handler_of_another_arch(self, tmp_path):
        directory = binfmt_dir(tmp_path, {'qemu-s390x': shown(BINFMT_D['s390x'])})
        assert emulation_problem('aarch64', directory) == \
            'no enabled binfmt_misc handler runs aarch64 programs'
        assert emulation_problem('s390x', directory) == ''

    def test_handler_disabled(self, tmp_path):
        directory = binfmt_dir(tmp_path, {
            'qemu-aarch64': DEBIAN_AARCH64.replace('enabled', 'disabled', 1)
        })
        assert emulation_problem('aarch64', directory) == \
            'no enabled binfmt_misc handler runs aarch64 programs'

    def test_handler_without_f_flag(self, tmp_path):
        directory = binfmt_dir(tmp_path, {
            'qemu-aarch64': shown(BINFMT_D['aarch64'], flags='PO')
        })
        problem = emulation_problem('aarch64', directory)
        assert 'qemu-aarch64' in problem
        assert 'F flag' in problem

    def test_handler_with_f_flag(self, tmp_path):
        directory = binfmt_dir(tmp_path, {'qemu-aarch64': DEBIAN_AARCH64})
        assert emulation_problem('aarch64', directory) == ''

    def test_every_matching_handler_needs_f(self, tmp_path):
        """
        binfmt_misc does not show which of two matching handlers the
        kernel picks
        """
        directory = binfmt_dir(tmp_path, {
            'kiwi-box-aarch64-1': DEBIAN_AARCH64,
            'qemu-aarch64': shown(BINFMT_D['aarch64'], flags='P'),
        })
        problem = emulation_problem('aarch64', directory)
        assert 'qemu-aarch64' in problem and 'F flag' in problem

    def test_disabled_handler_without_f_does_not_count(self, tmp_path):
        directory = binfmt_dir(tmp_path, {
            'kiwi-box-aarch64-1': DEBIAN_AARCH64,
            'qemu-aarch64': shown(BINFMT_D['aarch64'], enabled=False, flags='P'),
        })
        assert emulation_problem('aarch64', directory) == ''

    def test_unknown_arch(self, tmp_path):
        directory = binfmt_dir(tmp_path, {'qemu-aarch64': DEBIAN_AARCH64})
        problem = emulation_problem('riscv64', directory)
        assert problem
        assert 'riscv64' in problem
