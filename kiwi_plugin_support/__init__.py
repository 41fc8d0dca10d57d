"""Pieces shared by the kiwi boxed and stackbuild plugins."""
