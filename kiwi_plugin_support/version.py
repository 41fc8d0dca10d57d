# The one place that holds the version of the plugin pair: setup.py,
# the documentation and the packaging read it from here.
__version__ = '0.1.0'
