"""kiwi-ng system boxbuild: run a kiwi build inside a box VM or container."""
