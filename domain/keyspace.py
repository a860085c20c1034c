"""Whether a node holds the data that was saved: key counts per database, as INFO keyspace gives
them. The values travel in the data files, whose checksums Redis verifies as it loads them."""

from __future__ import annotations


def differences(saved: dict, found: dict) -> list[str]:
    """Per database, the keys found are the keys saved, less at most those that had an expiry:
    a key whose time passed in between is dropped when the file loads, and that is no loss."""
    problems = []
    for db, count in saved.get("keys", {}).items():
        present, expiring = found.get("keys", {}).get(db, 0), saved.get("expires", {}).get(db, 0)
        if not count - expiring <= present <= count:
            problems.append(f"database {db}: {present} keys, {count} saved ({expiring} of them with an expiry)")
    return problems
