"""
Whether this host runs programs of another architecture: a binfmt_misc
handler (qemu-user) that the kernel would pick for an executable of
that architecture, with the F flag a container needs (the kernel opens
the interpreter at registration; the container's root has no qemu).
"""
import os
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional

BINFMT_DIR = '/proc/sys/fs/binfmt_misc'
# binfmt_misc's own files beside the handlers
BINFMT_CONTROL_FILES = ('register', 'status')

# per architecture: (ELF data encoding, e_machine); every one is 64 bit
LITTLE_ENDIAN = 1
BIG_ENDIAN = 2
ELF_MACHINES = {
    'x86_64': (LITTLE_ENDIAN, 0x3e),
    'aarch64': (LITTLE_ENDIAN, 0xb7),
    's390x': (BIG_ENDIAN, 0x16),
    'ppc64': (BIG_ENDIAN, 0x15),
    'ppc64le': (LITTLE_ENDIAN, 0x15),
}
ET_EXEC = 2


@dataclass(frozen=True)
class Handler:
    """
    A registered binfmt_misc handler of the magic kind

    :param str name: its file name in binfmt_misc
    :param bytes mask: of the same length as magic
    """
    name: str
    enabled: bool
    flags: str
    offset: int
    magic: bytes
    mask: bytes

    def matches(self, header: bytes) -> bool:
        """
        Whether the kernel would run a file starting with header
        through this handler
        """
        data = header[self.offset:self.offset + len(self.magic)]
        if len(data) < len(self.magic):
            return False
        return all(
            byte & mask == magic & mask
            for byte, magic, mask in zip(data, self.magic, self.mask)
        )


def elf_header(arch: str) -> bytes:
    """
    The first 20 bytes of an executable of arch: e_ident, e_type and
    e_machine
    """
    encoding, machine = ELF_MACHINES[arch]
    order = '<' if encoding == LITTLE_ENDIAN else '>'
    ident = b'\x7fELF' + bytes([2, encoding, 1]) + bytes(9)
    return ident + struct.pack(f'{order}HH', ET_EXEC, machine)


def parse_handler(name: str, text: str) -> Optional[Handler]:
    """
    A handler as its file in binfmt_misc shows it; None for one that
    matches by file name extension, not by magic
    """
    lines = text.splitlines()
    fields: Dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(' ')
        fields[key.rstrip(':')] = value.strip()
    if 'magic' not in fields:
        return None
    magic = bytes.fromhex(fields['magic'])
    mask = bytes.fromhex(fields['mask']) if 'mask' in fields else b'\xff' * len(magic)
    return Handler(
        name=name, enabled=bool(lines) and lines[0].strip() == 'enabled',
        flags=fields.get('flags', ''), offset=int(fields.get('offset', '0')),
        magic=magic, mask=mask
    )


def read_handlers(directory: str = BINFMT_DIR) -> List[Handler]:
    """
    The magic handlers registered on this host; none if binfmt_misc
    is not mounted
    """
    if not os.path.exists(os.path.join(directory, 'register')):
        return []
    handlers = []
    for entry in os.scandir(directory):
        if entry.name in BINFMT_CONTROL_FILES:
            continue
        try:
            with open(entry.path) as handle:
                handler = parse_handler(entry.name, handle.read())
        except OSError:
            # removed while we read
            continue
        if handler:
            handlers.append(handler)
    return sorted(handlers, key=lambda handler: handler.name)


def emulation_problem(arch: str, directory: str = BINFMT_DIR) -> str:
    """
    Why this host cannot run a container of arch through qemu-user

    :param str arch: kiwi's name of the architecture
    :return: '' if it can: an enabled handler that matches the
        architecture's executables, with the F flag
    """
    if arch not in ELF_MACHINES:
        return f'no emulation of {arch} programs is known to boxbuild'
    if not os.path.exists(os.path.join(directory, 'register')):
        return f'binfmt_misc is not mounted on {directory}'
    # 0 written to status switches every handler off at once
    with open(os.path.join(directory, 'status')) as status:
        if status.read().strip() != 'enabled':
            return f'binfmt_misc is switched off ({directory}/status)'
    header = elf_header(arch)
    matching = [
        handler for handler in read_handlers(directory)
        if handler.enabled and handler.matches(header)
    ]
    if not matching:
        return f'no enabled binfmt_misc handler runs {arch} programs'
    # which of several the kernel picks is not shown: each must do
    without_f = [handler.name for handler in matching if 'F' not in handler.flags]
    if without_f:
        return (
            f"the binfmt_misc handler {without_f[0]} of {arch} programs lacks the F flag "
            'that a container needs'
        )
    return ''
