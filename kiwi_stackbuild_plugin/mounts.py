"""The file systems mounted on this host, as this process sees them."""
import os
import re
from typing import List, Tuple

MOUNTINFO = '/proc/self/mountinfo'

# mountinfo writes space, tab, newline and backslash of a path in octal
_ESCAPE = re.compile(r'\\([0-7]{3})')


def mountinfo_entry(line: str) -> Tuple[str, str]:
    """
    (mount point, file system type) of one line of mountinfo

    The optional fields before ' - ' vary in number: the type is the
    first field after it.
    """
    fields = line.split()
    kind = fields[fields.index('-') + 1]
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), fields[4]), kind


def mounts_below(directory: str) -> List[Tuple[str, str]]:
    """
    The mounts strictly below directory, a mount on it excluded, sorted

    :return: (mount point, file system type) each
    """
    top = os.path.realpath(directory)
    prefix = top.rstrip('/') + '/'
    # paths are bytes: those that are no UTF-8 compare as os.fsdecode has them
    with open(MOUNTINFO, errors='surrogateescape') as mountinfo:
        entries = [mountinfo_entry(line) for line in mountinfo if line.strip()]
    return sorted(entry for entry in entries if entry[0] != top and entry[0].startswith(prefix))
