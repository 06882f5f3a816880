"""build.yml `config:`, typed as linuxkit's `moby.ImageConfig` (src/cmd/linuxkit/moby/config.go).

linuxkit decodes `config` into that struct, so a field of the wrong type is an error there
(`env: {A: 1}`, `capabilities: CAP_ALL`) and a value keeps its Go meaning: `mode: 0666` of a
device is the string "0666" (Device.Mode is a string), `major: 0x1f` is 31. The decoded
mapping is what lkpkg writes as the `org.mobyproject.config` label (JSON).

Fields of OCI runtime-spec types (`mounts`, `uidMappings`, `resources`) have no yaml tags in
Go, so yaml.v3 knows them by their lower-cased Go names (`destination`, `containerid`). The
`resources` subtree (specs.LinuxResources) is checked for its top-level keys only; below them
values are taken as they are (documented in docs/reference.md).
"""

from __future__ import annotations

from lkpkg.package.schema import Any, Bool, Int, ListOf, MapOf, Str, Struct

_UINT32 = Int(0, 2**32 - 1)
_STRINGS = ListOf(Str())

_ID_MAPPING = Struct({"containerid": _UINT32, "hostid": _UINT32, "size": _UINT32})
_MOUNT = Struct(
    {
        "destination": Str(),
        "type": Str(),
        "source": Str(),
        "options": _STRINGS,
        "uidmappings": ListOf(_ID_MAPPING),
        "gidmappings": ListOf(_ID_MAPPING),
    },
    omit_nil=True,
)
_DEVICE = Struct({"path": Str(), "type": Str(), "major": Int(), "minor": Int(), "mode": Str()})
_NAMESPACES = Struct(
    {name: Str() for name in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")}
)
_INTERFACE = Struct({"name": Str(), "add": Str(), "peer": Str(), "createInRoot": Bool()})
_RUNTIME = Struct(
    {
        "cgroups": _STRINGS,
        "mounts": ListOf(_MOUNT),
        "mkdir": _STRINGS,
        "interfaces": ListOf(_INTERFACE),
        "bindNS": _NAMESPACES,
        "namespace": Str(),
    },
    pointer=True,
    omit_nil=True,
)
_RESOURCES = Struct(
    {
        name: Any()
        for name in (
            "devices",
            "memory",
            "cpu",
            "pids",
            "blockio",
            "hugepagelimits",
            "network",
            "rdma",
            "unified",
        )
    },
    pointer=True,
    omit_nil=True,
)

IMAGE_CONFIG = Struct(
    {
        "capabilities": _STRINGS,
        "capabilities.add": _STRINGS,
        "ambient": _STRINGS,
        "mounts": ListOf(_MOUNT),
        "binds": _STRINGS,
        "binds.add": _STRINGS,
        "devices": ListOf(_DEVICE),
        "tmpfs": _STRINGS,
        "command": _STRINGS,
        "env": _STRINGS,
        "cwd": Str(),
        "net": Str(),
        "pid": Str(),
        "ipc": Str(),
        "uts": Str(),
        "userns": Str(),
        "hostname": Str(),
        "readonly": Bool(),
        "maskedPaths": _STRINGS,
        "readonlyPaths": _STRINGS,
        "uid": Any(),
        "gid": Any(),
        "additionalGids": ListOf(Any()),
        "noNewPrivileges": Bool(),
        "oomScoreAdj": Int(),
        "rootfsPropagation": Str(),
        "cgroupsPath": Str(),
        "resources": _RESOURCES,
        "sysctl": MapOf(Str()),
        "rlimits": _STRINGS,
        "uidMappings": ListOf(_ID_MAPPING),
        "gidMappings": ListOf(_ID_MAPPING),
        "annotations": MapOf(Str()),
        "runtime": _RUNTIME,
    },
    pointer=True,
    omit_nil=True,
)
