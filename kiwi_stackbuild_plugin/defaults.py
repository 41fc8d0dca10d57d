"""The constants of stash and stackbuild, in one place."""


class StackbuildDefaults:
    """
    Names and values shared by stash, stackbuild and the listing
    """
    # the registry part podman gives to images that were never pulled;
    # stashes live there so a short name never resolves to a registry
    local_registry = 'localhost'
    default_tag = 'latest'

    # label keys: the presence of label_name marks an image as a stash
    label_prefix = 'org.opensuse.kiwi.stash.'
    label_name = label_prefix + 'image-name'
    label_version = label_prefix + 'image-version'
    label_author = label_prefix + 'author'
    label_arch = label_prefix + 'arch'
    label_created = label_prefix + 'created'
    label_source = label_prefix + 'source'
    # the image format has no place for the mode and owner of '/',
    # and podman presents it as 0555: keep the real ones here
    label_root_mode = label_prefix + 'root-mode'
    label_root_owner = label_prefix + 'root-owner'

    history_created_by = 'kiwi-ng system stash'

    # what a run mounts and makes is written down here first, so that a
    # later run can undo it if this one is killed (see run_journal.py)
    journal_dir = '/var/lib/kiwi-stackbuild/journals'
    # the private directories of a run: the root being stacked, beside
    # the target root, and the work files of a stash, in the temp dir
    staging_prefix = '.image-root.stacking-'
    stash_work_prefix = 'kiwi-stash-'
