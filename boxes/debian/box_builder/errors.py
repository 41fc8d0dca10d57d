"""
The one failure of the box build.
"""


class BoxBuildError(Exception):
    """
    Raised when the box cannot be built; one line saying what failed
    """
