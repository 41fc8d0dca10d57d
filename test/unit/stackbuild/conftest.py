"""
Fixtures of the stash and stackbuild unit tests: a root user and the
container tools' runs, faked.
"""
import os
from typing import Callable
from unittest.mock import Mock

import pytest
from kiwi.command import Command

from kiwi_stackbuild_plugin.defaults import StackbuildDefaults

ToolResult = Callable[..., Mock]


@pytest.fixture(autouse=True)
def journal_dir(tmp_path, monkeypatch) -> str:
    """
    The run journals of a test, never those of the host
    """
    path = str(tmp_path / 'journals')
    monkeypatch.setattr(StackbuildDefaults, 'journal_dir', path)
    return path


@pytest.fixture
def as_root(mocker) -> None:
    """
    the effective user is root, as stash and stackbuild require
    """
    mocker.patch.object(os, 'geteuid', return_value=0)


@pytest.fixture
def tool_result() -> ToolResult:
    """
    what kiwi's Command.run returns: tool_result(output, error, returncode)
    """
    def result(output: str = '', error: str = '', returncode: int = 0) -> Mock:
        return Mock(output=output, error=error, returncode=returncode)
    return result


@pytest.fixture
def command_run(mocker, tool_result) -> Mock:
    """
    kiwi's Command.run, through which podman, skopeo and rsync run;
    by default every run succeeds without output
    """
    return mocker.patch.object(Command, 'run', return_value=tool_result())
