"""lkpkg: build, publish, sign and verify LinuxKit packages."""

__version__ = "0.1.0"
