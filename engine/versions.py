"""The `versions` listing: each engine version of the catalog, whether it has TLS, its RDB format, where
its build comes from (`source`: the Debian package and suite, or the PyPI wheel), and the exact
package version its image on each host was built from (`package_version`: the one every host's image
holds, None while they differ, e.g. one host not rebuilt yet after a security update).

Read from the image itself (the labels scripts/build-images.py records; their names are in
scripts/image_record.py), not from what is installed on this machine: an image that the setup has
not rebuilt yet shows the older version it really holds. Nodes run the image they were created
from, so a rebuilt image serves new nodes only.
"""

from __future__ import annotations

import asyncio

from domain.catalog import VersionCatalog
from engine.ports import EffectError, Runtime, TransientError

PREFIX = "redis-addons."
REGISTRY, PACKAGE, PACKAGE_VERSION = PREFIX + "package-registry", PREFIX + "package", PREFIX + "package-version"
DEBIAN_PACKAGES, BUILT_AT = PREFIX + "debian-packages", PREFIX + "built-at"
REGISTRIES = {"debian": "Debian", "pypi": "PyPI"}


async def version_list(runtime: Runtime, catalog: VersionCatalog, hosts: list[str]) -> list[dict]:
    """One entry per catalog version, with what its image holds on each host (hosts asked at once)."""
    versions = list(catalog)

    async def on(host: str, image: str) -> dict:
        try:
            return image_view(host, await runtime.image_labels(host, image))
        except (EffectError, TransientError) as e:
            return {"host": host, "present": None, "package": None, "debian_packages": {}, "built_at": None,
                    "problem": f"could not read the image: {e}"}

    found = await asyncio.gather(*(on(host, v.image) for v in versions for host in hosts))
    return [
        {"version": v.version, "engine": v.engine, "tls": v.tls, "rdb_format": v.rdb_format, "retired": v.retired,
         "default": v.version == catalog.default.version, "image": v.image, "source": v.source,
         "package_version": same_everywhere(images), "hosts": images}
        for i, v in enumerate(versions) for images in [found[i * len(hosts):(i + 1) * len(hosts)]]
    ]


def same_everywhere(images: list[dict]) -> str | None:
    """The package version every host's image was built from; None when one has none or they differ."""
    built_from = {(image["package"] or {}).get("version") for image in images}
    return built_from.pop() if len(built_from) == 1 else None


def image_view(host: str, labels: dict[str, str] | None) -> dict:
    """What one host's image says it was built from; `problem` says why it says nothing."""
    if labels is None:
        return {"host": host, "present": False, "package": None, "debian_packages": {}, "built_at": None,
                "problem": "no image on this host: `make setup` builds it"}
    if not labels.get(PACKAGE_VERSION):
        return {"host": host, "present": True, "package": None, "debian_packages": {}, "built_at": None,
                "problem": "built before package versions were recorded: `make setup` rebuilds it"}
    registry = labels.get(REGISTRY, "")
    return {
        "host": host,
        "present": True,
        "package": {"registry": REGISTRIES.get(registry, registry), "name": labels.get(PACKAGE, ""),
                    "version": labels[PACKAGE_VERSION]},
        # Neither Debian versions nor package names hold "=" or spaces.
        "debian_packages": dict(item.split("=", 1) for item in labels.get(DEBIAN_PACKAGES, "").split() if "=" in item),
        "built_at": labels.get(BUILT_AT),
        "problem": None,
    }
