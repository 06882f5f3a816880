"""The local image cache: an OCI image layout on disk, shared with linuxkit's own cache."""
