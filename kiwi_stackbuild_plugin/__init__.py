"""kiwi-ng system stash / stackbuild: root trees as OCI containers and back."""
