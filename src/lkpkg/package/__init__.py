"""A LinuxKit package on disk: its build.yml, its sources and what it builds into."""
