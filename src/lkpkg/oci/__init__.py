"""The OCI vocabulary every other lkpkg module speaks: digests, media types, descriptors,
manifests, indexes and platforms. Nothing here touches the disk or the network."""
