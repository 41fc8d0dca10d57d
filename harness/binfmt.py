"""
binfmt_misc without a way to run an architecture's programs, for the
tests of boxes of another architecture (box_builder.emulation gives the
way); taken back after the block, so the host is left as it was found.
"""
import os
from contextlib import contextmanager
from typing import Iterator, List

from kiwi_boxed_plugin.binfmt import BINFMT_DIR, elf_header, read_handlers


def write_handler(name: str, value: str) -> None:
    with open(os.path.join(BINFMT_DIR, name), 'w') as handler:
        handler.write(value)


@contextmanager
def without_emulation(arch: str) -> Iterator[None]:
    """
    The host's enabled handlers of arch's programs disabled for the
    block, enabled again after it
    """
    header = elf_header(arch)
    disabled: List[str] = []
    try:
        for handler in read_handlers():
            if handler.enabled and handler.matches(header):
                # '0' disables a handler, '1' enables it again
                write_handler(handler.name, '0')
                disabled.append(handler.name)
        yield
    finally:
        for name in disabled:
            write_handler(name, '1')
