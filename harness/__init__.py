"""
The harness of the tests and the benchmarks: real services and the
building blocks of their fixtures, one module per concern.

Not part of the wheel (setup.py packages only kiwi_*). It is imported
from the repository root: pytest puts the root on sys.path (tox.ini's
pythonpath), and the benchmarks run there as `python -m bench.<name>`.

    paths              the checkout, its test data, the test store, kiwi-ng
    unprivileged       a throw-away user and a kiwi-ng that user can run
    processes          host processes: list, descendants, Ctrl-C, waiting
    orphans            children that must die with their killed parent
    podman             podman calls and container storages of our own
    registry           Debian's docker-registry on 127.0.0.1
    boxserver          an HTTP server of box trees with faults on demand
    box_cache_user     one boxbuild's use of the box cache, as a process
    debian_box         the Debian box of boxes/debian and its builder
    box_qemu           bare qemu boots of the Debian box
    descriptions       the kiwi descriptions the boxbuild runs use
    boxbuild           kiwi-ng system boxbuild runs to their end
    vm_boxbuild        boxbuilds in a VM box, with the VM tests' catalog
    container_boxbuild boxbuilds in a container box
    network_probes     a service on the host's loopback, and a box profile probing the network
    container_store    the container tests' podman storage with the box image
    faults             boxbuilds signalled mid-run, and what they left
    minbase            a cached Debian minbase root tree
    probe_tree         a tree with every kind of file metadata, its fingerprint
    stackbuild_kiwi    kiwi-ng stash/stackbuild runs with the test config
    crafted_images     stashes as a hostile registry would serve them
    stash_leftovers    what a stopped stash or stackbuild run can leave
    command_line       kiwi-ng command lines parsed as kiwi parses them
    tls                a throw-away CA and server certificate for https test servers
    boot_check         a disk image booted under qemu to its login prompt, with a bound
    workflows          the bootable descriptions, their builds, a container image of a root
"""
