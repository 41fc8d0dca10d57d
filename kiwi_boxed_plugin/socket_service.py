"""
A service on a unix socket, inetd style: every connection is served by
a process of its own that has the connection as stdin and stdout (as
'sshd -i' takes it), for as long as a with-block runs.

A unix socket in the run's private dir reaches only this user and what
the run hands it to (the reverse forward of a box login), where a TCP
port of the loopback reaches every local user.
"""
import logging
import os
import selectors
import signal
import socket
import subprocess
import threading
from contextlib import contextmanager
from typing import BinaryIO, Iterator, List, Sequence

from kiwi_boxed_plugin.helper_process import stop_process
from kiwi_plugin_support.lifetime import parent_death_signal

log = logging.getLogger('kiwi')

# connections that may wait for their accept
BACKLOG = 8


class SocketService:
    """
    Accepts connections in a thread and starts argv for each

    The served processes are started from the accepting thread, which
    lives as long as the service: they get SIGKILL when it ends (the
    parent death signal follows the starting thread), and when
    boxbuild is killed.

    :param str socket_path: where the socket is made
    :param list argv: the program serving one connection
    :param str log_path: the stderr of every served process
    """
    def __init__(self, socket_path: str, argv: Sequence[str], log_path: str) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(socket_path)
        self.listener.listen(BACKLOG)
        self.wake_read, self.wake_write = os.pipe()
        self.served: List[subprocess.Popen] = []
        self.thread = threading.Thread(target=self.serve, name='socket-service', daemon=True)

    def serve(self) -> None:
        with open(self.log_path, 'ab') as log_file, \
                selectors.DefaultSelector() as selector:
            selector.register(self.listener, selectors.EVENT_READ)
            selector.register(self.wake_read, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self.wake_read in ready:
                    break
                connection, _ = self.listener.accept()
                with connection:
                    self.start(connection, log_file)
                # finished ones are reaped as new ones come
                self.served = [process for process in self.served if process.poll() is None]
            for process in self.served:
                stop_process(process)

    def start(self, connection: socket.socket, log_file: BinaryIO) -> None:
        try:
            self.served.append(subprocess.Popen(
                self.argv, stdin=connection.fileno(), stdout=connection.fileno(),
                stderr=log_file,
                start_new_session=True, preexec_fn=parent_death_signal(signal.SIGKILL)
            ))
        except OSError as issue:
            log.warning(f'cannot start {self.argv[0]} for a connection: {issue.strerror}')

    def stop(self) -> None:
        """
        End the thread, which stops the served processes, and close
        """
        os.write(self.wake_write, b'x')
        self.thread.join()
        self.listener.close()
        os.close(self.wake_read)
        os.close(self.wake_write)


@contextmanager
def socket_service(socket_path: str, argv: Sequence[str], log_path: str) -> Iterator[str]:
    """
    Serve socket_path with argv per connection for the with-block

    :return: socket_path
    """
    service = SocketService(socket_path, argv, log_path)
    service.thread.start()
    try:
        yield socket_path
    finally:
        service.stop()
        os.unlink(socket_path)
