"""Where a group's (or a user's) keys and channels live: partitions with hash tags.

On Redis Cluster a Lua script may only touch keys of one hash slot, and sharded pub/sub
subscribes channels of one slot per command. So every key and channel of a group shares one
hash tag: its partition's. There are ``REDIS_PARTITIONS`` partitions (16 by default); a group
or a user belongs to ``uuid mod count``. Centrifuge's release notes warn that simple tags
``{0}``, ``{1}``... hash unevenly under CRC16 (32 partitions land 13/11/8 on 3 primaries), so
partition ``i``'s tag is the first decimal string hashing to the centre of slot band ``i``:
partitions spread within one of each other over any number of primaries from 2 to 10
(``docs/architecture/redis-cluster-notes.md``).

On one Redis there is one partition by default, and names carry no tag (keys keep their plain
names); several partitions there are numbered ``<prefix><index>:<name>``.
"""

from __future__ import annotations

import functools
import uuid

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot


@functools.cache
def partition_tags(count: int) -> tuple[str, ...]:
    """Hash tags for ``count`` partitions: tag ``i`` hashes to the centre of slot band ``i``.

    A search over many candidates (a fifth of a second for 16): done once per count.
    """
    centres = {(2 * i + 1) * REDIS_CLUSTER_HASH_SLOTS // (2 * count): i for i in range(count)}
    tags = [""] * count
    candidate = 0
    while not all(tags):
        index = centres.get(key_slot(str(candidate).encode()))
        if index is not None and not tags[index]:
            tags[index] = str(candidate)
        candidate += 1
    return tuple(tags)


def _tags(count: int, *, sharded: bool) -> tuple[str, ...]:
    """What names start with: a hash tag per partition, else a plain index (none for one)."""
    if sharded:
        return tuple(f"{{{tag}}}" for tag in partition_tags(count))
    return ("",) if count == 1 else tuple(f"{index}:" for index in range(count))


class Partitions:
    """Names of keys and channels, placed by partition."""

    __slots__ = ("_tags", "count", "prefix", "sharded")

    def __init__(self, prefix: str, count: int = 1, *, sharded: bool = False) -> None:
        self.prefix = prefix
        self.count = count
        self.sharded = sharded
        """On a Redis Cluster: every name carries its partition's hash tag."""
        self._tags = _tags(count, sharded=sharded)

    def of(self, owner: uuid.UUID) -> int:
        """The partition of a group or a user."""
        return owner.int % self.count

    def key(self, partition: int, name: str) -> str:
        """A key of ``partition`` (its hash tag, then the name)."""
        return f"{self.prefix}{self._tags[partition]}{name}"

    def owned(self, owner: uuid.UUID, name: str) -> str:
        """A key of the group or user ``owner``, in its partition."""
        return self.key(self.of(owner), name)

    def channel(self, partition: int, name: str) -> str:
        """A pub/sub channel of ``partition`` (sharded on a cluster)."""
        return self.key(partition, name)
