"""The package version, in a module of its own: the command line, the language server and the
report read it from here, so none of them imports the `steerlang` package itself (whose lazy
notebook API reaches up to the commands; steerlang/__init__.py)."""

__version__ = "0.1.0"
