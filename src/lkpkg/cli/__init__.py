"""The command-line skin over the library: parse flags, call the library, map errors."""
