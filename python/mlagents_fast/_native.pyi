# Type stub of the private compiled module. Public names are re-exported by the
# Python modules that wrap them; import from those, not from here.

__version__: str
