"""
A throw-away certificate authority and a server certificate for
127.0.0.x, so a test server speaks https that the client verifies as
it verifies any server (point $REQUESTS_CA_BUNDLE at the CA).
"""
import os
import ssl
import subprocess
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class ServerCertificates:
    """
    :param str ca: the CA certificate, for the client's trust
    :param str cert: the server certificate, signed by the CA
    :param str key: the server's private key
    """
    ca: str
    cert: str
    key: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificates(directory: str, addresses: Sequence[str]) -> ServerCertificates:
    """
    A CA and a server certificate valid for the given IP addresses,
    written into directory (by openssl, valid for two days)
    """
    def path(name: str) -> str:
        return os.path.join(directory, name)

    def openssl(*args: str) -> None:
        subprocess.run(['openssl', *args], check=True, capture_output=True)

    new_key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    openssl(
        'req', '-x509', *new_key, '-keyout', path('ca.key'), '-out', path('ca.pem'),
        '-days', '2', '-subj', '/CN=kiwi plugins test CA'
    )
    openssl(
        'req', *new_key, '-keyout', path('server.key'), '-out', path('server.csr'),
        '-subj', '/CN=kiwi plugins test server'
    )
    with open(path('server.ext'), 'w') as extensions:
        extensions.write(
            'basicConstraints = CA:FALSE\n'
            'keyUsage = digitalSignature\n'
            'extendedKeyUsage = serverAuth\n'
            f"subjectAltName = {','.join('IP:' + address for address in addresses)}\n"
        )
    openssl(
        'x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'),
        '-CAkey', path('ca.key'), '-CAcreateserial', '-days', '2',
        '-extfile', path('server.ext'), '-out', path('server.pem')
    )
    return ServerCertificates(ca=path('ca.pem'), cert=path('server.pem'), key=path('server.key'))
