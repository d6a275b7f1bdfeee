"""The newest version of each lab resource the lab service has taken. The bus delivers at
least once and not in order (handlers run concurrently, a retry comes back after a delay), and
a stale version must not undo a newer one: a critical value raised again from the first
version of a result already corrected to normal, a cancelled tube brought back by its order's
earlier version."""

from collections import OrderedDict

from hub.base.json import Json

CAPACITY = 500_000  # resources remembered, newest use last: far beyond a day of lab work


class VersionsSeen:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def newer(self, resource: Json) -> bool:
        """Whether ``resource`` is newer than every version taken before; remembers it then.
        A resource without a numeric ``meta.versionId`` is always taken."""
        version = str((resource.get("meta") or {}).get("versionId") or "")
        if not version.isdigit():
            return True
        key = f"{resource['resourceType']}/{resource['id']}"
        held = self._seen.get(key)
        if held is not None and int(version) <= held:
            return False
        self._seen[key] = int(version)
        self._seen.move_to_end(key)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
