"""Builders: real build engines (buildah, a Docker engine) behind one interface."""
