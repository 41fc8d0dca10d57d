"""
The builder of the Debian box, which boxes/debian/build-box runs.

It builds the box from Debian's packages, offline from anything but
the host's configured Debian mirror and PyPI, in the published boxes'
shape:

    <output>/Debian-Box.x86_64-Kernel.tar.xz      *.kernel and *.initrd
    <output>/Debian-Box.x86_64-System.qcow2       the system disk
    <output>/*.sha256                             beside each box file
    <output>/Debian-Box.x86_64-System.packages    the installed packages
    <output>/Debian-Box.x86_64-rootfs.tar         the root tree, for podman

then imports the root tree into podman as the box's container image and
adds the box to the user's box catalog.

The build is keyed by a hash of the recipe (boxes/debian), the box side
of the plugin and what is carried over from the host (mirror, CA
certificates, pip settings, without credentials): with nothing changed
it only checks and returns. A rebuild replaces the box atomically:
<output> is a symbolic link to a directory per recipe hash, switched in
one rename.

Runs as root. Uses no loop mounts: the disk is made with mkfs.ext4 -d.

Flavours (--flavour): 'agent', the box of recipe.toml and root/ running
our agent; 'conformance', the same system with the overrides and files
of flavours/conformance/, whose box side behaves as the published
boxes' does (a job script instead of the agent, a baked root key pair,
systemd as the container image's entry point). Each has its own file
names, output, recipe hash, container image and catalog entry.

The modules, one concern each:

- recipe: recipe.toml, the box's file names, the recipe hash
- apt_sources: the Debian mirror the host's apt sources name
- host_settings: CA certificates, pip settings, proxies taken from the
  host, without credentials
- root_tree: the root tree built in a chroot
- mounts: the chroot's mounts and what killed builds left mounted
- box_files, disk: the published files, the system disk among them
- build: a build from recipe to published box, unless up to date
- publish: the output link, its lock and check, leftovers
- container_image: the podman image of the root tree
- catalog_merge: the box's entry in the user's catalog
- programs, files, errors: running programs, file helpers, the error
- cli: the command line
"""
