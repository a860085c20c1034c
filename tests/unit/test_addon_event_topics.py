"""The Addon's facts kept in other modules (domain/addon_tls.py, domain/addon_upgrades.py) are stored under
the Addon's own topics, so events written before they moved still replay, and projections' Addon.X match."""

from eventsourcing.utils import get_topic, resolve_topic

from domain.addon import Addon

MOVED = ["UpgradeRequested", "Upgraded", "UpgradeFailed", "TlsPortRequested", "TlsServed", "TlsServingFailed",
         "CertificateRenewalStarted", "CertificateRenewed", "CertificateRenewalFailed"]


def test_moved_facts_keep_the_addon_topics():
    for name in MOVED:
        cls = getattr(Addon, name)
        assert get_topic(cls) == f"domain.addon:Addon.{name}"
        assert resolve_topic(f"domain.addon:Addon.{name}") is cls
