"""fsutil.mount_points_under: the mounts a sweep of a builder's store detaches."""

from __future__ import annotations

from pathlib import Path

from lkpkg.fsutil import mount_points_under

MOUNTINFO = (
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "58 27 0:48 / /srv/c.buildah/graph/overlay/abc/merged rw - overlay overlay rw,lowerdir=x\n"
    "59 27 0:49 / /srv/c.buildah/graph/overlay/a\\040b/merged rw - overlay overlay rw\n"
    "60 27 0:50 / /srv/c.buildah2/graph/overlay/zzz/merged rw - overlay overlay rw\n"
    "61 27 0:51 / /srv/c.buildah rw - tmpfs tmpfs rw\n"
    "62 58 0:52 / /srv/c.buildah/graph/overlay/abc/merged/proc rw - proc proc rw\n"
)


def test_mounts_under_a_store_deepest_first_escapes_undone_siblings_left_out() -> None:
    found = mount_points_under(Path("/srv/c.buildah"), MOUNTINFO)
    assert found[0] == Path("/srv/c.buildah/graph/overlay/abc/merged/proc")
    assert set(found) == {
        Path("/srv/c.buildah/graph/overlay/abc/merged/proc"),
        Path("/srv/c.buildah/graph/overlay/abc/merged"),
        Path("/srv/c.buildah/graph/overlay/a b/merged"),
        Path("/srv/c.buildah"),
    }
    assert found[-1] == Path("/srv/c.buildah")  # the store itself, last
    assert mount_points_under(Path("/elsewhere"), MOUNTINFO) == []
