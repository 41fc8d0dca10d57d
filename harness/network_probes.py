"""
What a box reaches of the network: a service on the host's loopback
that a box must not reach, and a quick job's box profile that tries it,
the gateway and the host's Debian mirror, and records the outcomes in
the bundle.
"""
import json
import os
import socket
import threading
from contextlib import contextmanager
from typing import Dict, Iterator

from box_builder.apt_sources import host_mirror
from box_builder.recipe import load_recipe

# What the loopback service says to whoever reaches it
BANNER = 'host-loopback-service'
# The file of the bundle the probe writes
PROBE_FILE = 'network-probe.json'

# Runs in the box (its python3): tries the port on the box's loopback
# and at its gateway (a VM finds the host there, a container on
# podman's bridge as well), a HEAD of the mirror, and writes what
# happened as JSON
PROBE = r'''
import json, socket, sys, urllib.request
port, mirror, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def gateway():
    for line in open('/proc/net/route').read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == '00000000':
            return socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
    return ''
def reach(host):
    try:
        with socket.create_connection((host, port), timeout=10) as connection:
            connection.settimeout(10)
            return connection.recv(64).decode(errors='replace').strip()
    except OSError as issue:
        return f'failed: {issue}'
hosts = sorted({'127.0.0.1', gateway()} - {''})
result = {'loopback service': {host: reach(host) for host in hosts}}
try:
    request = urllib.request.Request(mirror, method='HEAD')
    result['mirror'] = urllib.request.urlopen(request, timeout=60).status
except OSError as issue:
    result['mirror'] = f'failed: {issue}'
with open(out, 'w') as handle:
    json.dump(result, handle)
'''


def mirror_url() -> str:
    """
    The Debian mirror of this host's apt sources, as the box builder
    finds it: read at run time, never written into the repository
    """
    return host_mirror(load_recipe()).rstrip('/') + '/'


@contextmanager
def loopback_service() -> Iterator[int]:
    """
    A TCP service on 127.0.0.1 that says BANNER to every client, for the
    with-block

    :return: its port
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(16)

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                client.sendall(f'{BANNER}\n'.encode())
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def probe_script(port: int) -> str:
    """
    Box profile lines that probe the network and never fail the profile

    :param int port: of the loopback service
    """
    return (
        f"python3 - {port} '{mirror_url()}' /bundle/{PROBE_FILE} <<'PROBE' || true\n"
        f"{PROBE}PROBE\n"
    )


def probe_result(target_dir: str) -> Dict:
    """
    What the probe of a box recorded in the target dir
    """
    with open(os.path.join(target_dir, PROBE_FILE)) as handle:
        return json.load(handle)
