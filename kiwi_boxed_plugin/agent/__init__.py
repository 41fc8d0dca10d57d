"""
The box side: what a box built by boxes/ carries to run the host's jobs.

kiwi_box_agent.py is the service that runs the job; kiwi_box_protocol.py
holds every word host and box exchange and is imported by the host's
runners and by the agent alike. Both are installed into the box as plain
files (standard library only) beside each other in BOX_AGENT_DIR; here
they are modules so that the host and the tests can import them.
"""
import os

# where a box keeps the agent and the protocol module
BOX_AGENT_DIR = '/usr/lib/kiwi-box'
# the files installed there, in this directory of the plugin
BOX_AGENT_FILES = ('kiwi_box_agent.py', 'kiwi_box_protocol.py')
# the systemd unit that starts the agent at boot
BOX_AGENT_UNIT = 'kiwi-box-agent.service'


def source_path(name: str) -> str:
    """
    The plugin's copy of a box side file, for installing it into a box
    """
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
