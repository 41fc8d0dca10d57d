"""
Text for the user: a file read as text, the telling line of a tool's
output, a size in podman's units.
"""


def read_text(path: str) -> str:
    """
    A file as text; bytes that are no UTF-8 are replaced, never fatal
    """
    with open(path, 'rb') as handle:
        return handle.read().decode(errors='replace')


def last_line(text: str, empty: str = '(no output)') -> str:
    """
    The last non-empty line of a tool's output, which is where podman,
    qemu, sshd and virtiofsd say what went wrong

    :param str empty: what to show when the output holds no line
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else empty


def human_size(size: float) -> str:
    """
    Bytes in the SI units podman uses, e.g. '211 MB'
    """
    value = float(size)
    for unit in ('B', 'kB', 'MB', 'GB'):
        if value < 1000:
            return f'{value:.0f} {unit}' if unit == 'B' else f'{value:.3g} {unit}'
        value /= 1000
    return f'{value:.3g} TB' if value < 1000 else f'{value:.0f} TB'
