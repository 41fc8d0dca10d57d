"""
Reading, writing and checksumming the files of the build.
"""
import hashlib
import os


def read_file(path: str) -> bytes:
    """
    :return: the file's content
    """
    with open(path, 'rb') as handle:
        return handle.read()


def write_file(path: str, content: str, mode: int = 0o644) -> None:
    """
    Write a text file, making its directory if need be

    :param int mode: the file's permissions, set whatever the umask
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write(content)
    os.chmod(path, mode)


def file_sha256(path: str) -> str:
    """
    :return: the hex SHA-256 of a file, read in chunks (disks are large)
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_line(digest: str, name: str) -> str:
    """
    :return: a line of a .sha256 file, as sha256sum writes it
    """
    return f'{digest}  {name}\n'
