"""The stretched Ceph cluster both simulated sites share (Metro-DR): RBD images, their snapshots, and what the
canary wrote on them.

One object serves the simulators of every cluster, which is what makes a snapshot taken on the primary usable on
the secondary through a pre-provisioned VolumeSnapshotContent carrying the same ``snapshotHandle``, exactly the
property the drill relies on. Handles are shaped like ceph-csi's composite volume IDs.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

from .canary import CanaryWriter

_POOL_ID = 2  # the pool's id in the handle; ceph-csi writes it as 16 hex digits


def ceph_csi_id(cluster_id: str, object_uuid: uuid.UUID) -> str:
    """ceph-csi's CSIIdentifier: version 1, the length of the cluster ID, the cluster ID, the pool ID, the UUID
    (``0001-0011-openshift-storage-0000000000000002-<uuid>``)."""
    return f"0001-{len(cluster_id):04x}-{cluster_id}-{_POOL_ID:016x}-{object_uuid}"


@dataclass
class Image:
    """An RBD image: its size, and the canary timestamp it holds at a moment (``None``: no canary file)."""

    cluster_id: str
    size: int
    frozen: int | None = None  # nanoseconds since the epoch
    writer: CanaryWriter | None = None

    def canary_at(self, at_ns: int) -> int | None:
        if self.writer is not None:
            written = self.writer.newest_at(at_ns)
            return written if written is not None else self.frozen
        return self.frozen


@dataclass(frozen=True)
class Snapshot:
    handle: str
    size: int
    created_ns: int
    canary: int | None


class StretchedCeph:
    """Images and snapshots by handle; thread-safe (the simulators of both sites call it)."""

    def __init__(self) -> None:
        self._images: dict[str, Image] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def create_image(self, cluster_id: str, owner_uid: str, size: int, canary: int | None = None) -> str:
        handle = ceph_csi_id(cluster_id, uuid.uuid5(uuid.NAMESPACE_URL, f"image/{owner_uid}"))
        with self._lock:
            self._images[handle] = Image(cluster_id, size, frozen=canary)
        return handle

    def image(self, handle: str) -> Image | None:
        with self._lock:
            return self._images.get(handle)

    def delete_image(self, handle: str) -> None:
        with self._lock:
            self._images.pop(handle, None)

    def start_writer(self, handle: str, writer: CanaryWriter) -> None:
        with self._lock:
            image = self._images.get(handle)
            if image is not None:
                image.writer = writer

    def stop_writer(self, handle: str, at_ns: int) -> None:
        """The writer pod is gone: the image keeps what it held at ``at_ns``."""
        with self._lock:
            image = self._images.get(handle)
            if image is not None and image.writer is not None:
                image.frozen = image.canary_at(at_ns)
                image.writer = None

    def snapshot(self, volume_handle: str, owner_uid: str, at_ns: int, lag_ns: int) -> Snapshot:
        """A snapshot of the image taken at ``at_ns``; it holds what had reached the image ``lag_ns`` earlier."""
        with self._lock:
            image = self._images.get(volume_handle)
            if image is None:
                raise LookupError(f"rbd: image {volume_handle} not found")
            handle = ceph_csi_id(image.cluster_id, uuid.uuid5(uuid.NAMESPACE_URL, f"snapshot/{owner_uid}"))
            snap = Snapshot(handle, image.size, at_ns, image.canary_at(at_ns - lag_ns))
            self._snapshots[handle] = snap
            return snap

    def find_snapshot(self, handle: str) -> Snapshot | None:
        with self._lock:
            return self._snapshots.get(handle)

    def delete_snapshot(self, handle: str) -> None:
        with self._lock:
            self._snapshots.pop(handle, None)
