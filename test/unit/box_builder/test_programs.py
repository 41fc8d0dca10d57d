"""
box_builder.programs: external programs and their failures in one line
"""
import sys

import pytest

from box_builder.errors import BoxBuildError
from box_builder.programs import run


def test_output_is_kept():
    assert run([sys.executable, '-c', 'print("hello")']).stdout == b'hello\n'


def test_missing_program_says_where_to_get_it():
    with pytest.raises(BoxBuildError, match=r'^no-such-program is not installed: see \.ci/'):
        run(['no-such-program'])


def test_failure_with_its_last_three_lines():
    script = 'import sys; print("1\\n2\\n3"); sys.stderr.write("4\\n"); sys.exit(3)'
    with pytest.raises(BoxBuildError) as failure:
        run([sys.executable, '-c', script])
    assert str(failure.value) == f'{sys.executable} failed with exit code 3: 2 | 3 | 4'


def test_failure_without_output():
    with pytest.raises(BoxBuildError, match=r'exit code 1: \(no output\)$'):
        run([sys.executable, '-c', 'raise SystemExit(1)'])
