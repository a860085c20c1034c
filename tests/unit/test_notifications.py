"""Which facts of the log make a webhook message, and what it says (domain/notifications.py); the
webhook URL rule (domain/webhook.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, datetime, timezone

import pytest

from domain.backup import Backup
from domain.cluster import Cluster, node_record
from domain.notifications import (BUILD_OUTDATED, TYPES, build_key, build_outdated, delivery_id, event_key,
                                  for_webhook, may_notify, message_for, signature)
from domain.operation import Operation
from domain.webhook import InvalidWebhookUrl, Webhook, webhook_url

AT = "2026-12-02T12:00:00+00:00"
NOW = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)


def a_cluster() -> Cluster:
    cluster = Cluster(addon="shop-1234", app="shop")
    for role, name in (("data", "node-a"), ("sentinel", "sentinel-a")):
        cluster.place_node(node_record(role, "host-a", "127.0.1.1", 30000, name, f"{name}-data", 256, "7.0.15"))
        cluster.mark_node_started(name)
    cluster.collect_events()
    return cluster


def last_message(aggregate) -> dict | None:
    [event] = aggregate.collect_events()
    return message_for(event, aggregate)


def test_a_node_down_and_back_as_the_engine_saw_it():
    cluster = a_cluster()
    cluster.mark_node_down("node-a", "its container exited (137)", AT)
    assert last_message(cluster) == {"type": "node.down", "app": "shop", "addon": "shop-1234", "node": "node-a",
                                     "role": "data", "host": "host-a", "reason": "its container exited (137)",
                                     "observed_by": "engine", "at": AT}
    cluster.mark_node_recovered("node-a", "restarted on its data", AT)
    assert last_message(cluster) == {"type": "node.up", "app": "shop", "addon": "shop-1234", "node": "node-a",
                                     "role": "data", "host": "host-a", "reason": "restarted on its data",
                                     "observed_by": "engine", "at": AT}


def test_the_sentinels_seeing_a_node_down_tell_it_once_per_episode_not_again_at_odown():
    cluster = a_cluster()
    cluster.sentinels_saw_down("node-a", "sdown", "127.0.2.1:26379", AT)
    down = last_message(cluster)
    assert (down["type"], down["node"], down["observed_by"]) == ("node.down", "node-a", "sentinels")
    assert "127.0.2.1:26379" in down["reason"]
    cluster.sentinels_saw_down("node-a", "odown", "127.0.3.1:26379", AT)
    assert last_message(cluster) is None
    cluster.sentinels_saw_up("node-a", "sdown", "127.0.3.1:26379", AT)
    assert last_message(cluster)["type"] == "node.up"


def test_a_cluster_degraded_then_redundant():
    cluster = a_cluster()
    cluster.mark_degraded("no replica in sync", AT)
    assert last_message(cluster) == {"type": "cluster.degraded", "app": "shop", "addon": "shop-1234",
                                     "reason": "no replica in sync", "at": AT}
    cluster.mark_redundant(AT)
    assert last_message(cluster)["type"] == "cluster.redundant"


def test_an_operation_whose_compensation_could_not_finish_needs_attention():
    operation = Operation(kind="change_plan", addon="shop-1234", app="shop")
    operation.collect_events()
    operation.mark_compensation_failed("host-b did not answer")
    message = last_message(operation)
    assert message["type"] == "operation.needs_attention"
    assert message["operation"] == {"id": str(operation.id), "kind": "change_plan"}
    assert (message["app"], message["addon"], message["reason"]) == ("shop", "shop-1234", "host-b did not answer")
    datetime.fromisoformat(message["at"])


@pytest.mark.parametrize("kind, told", [("scheduled", True), ("manual", False)])
def test_a_failed_backup_is_told_when_it_was_scheduled(kind, told):
    backup = Backup.request("shop-1234", "shop", "starter", kind, NOW, day=date(2026, 12, 2) if kind == "scheduled" else None)
    backup.collect_events()
    backup.mark_failed("the node did not answer")
    message = last_message(backup)
    if told:
        assert (message["type"], message["backup"], message["reason"]) == ("backup.failed", str(backup.id),
                                                                          "the node did not answer")
    else:
        assert message is None


def test_other_facts_make_no_message_and_need_no_aggregate():
    cluster = Cluster(addon="shop-1234", app="shop")
    [formed] = cluster.collect_events()
    assert not may_notify(formed) and message_for(formed, cluster) is None
    operation = Operation(kind="provision", addon="shop-1234", app="shop")
    operation.mark_succeeded()
    assert all(message_for(e, operation) is None for e in operation.collect_events())


def test_a_build_outdated_message_names_the_new_image():
    row = {"app": "shop", "addon": "shop-1234", "version": "7.0.15", "build": "sha256:abc", "nodes": ["node-a"]}
    message = build_outdated(row, NOW)
    assert message["type"] == BUILD_OUTDATED and message["build"] == "sha256:abc"
    assert "database-maintenance" in message["reason"] and message["at"] == NOW.isoformat()
    assert set(TYPES) == {"node.down", "node.up", "cluster.degraded", "cluster.redundant",
                          "operation.needs_attention", "backup.failed", "addon.build_outdated"}


def test_delivery_ids_are_stable_per_fact_and_webhook():
    assert delivery_id(event_key(42), "w1") == delivery_id(event_key(42), "w1")
    assert len({delivery_id(event_key(42), "w1"), delivery_id(event_key(43), "w1"), delivery_id(event_key(42), "w2"),
                delivery_id(build_key("shop-1234", "sha256:abc"), "w1")}) == 4


def test_an_operators_webhook_hears_every_app_an_apps_only_its_own():
    message = {"app": "shop"}
    assert for_webhook(message, None) and for_webhook(message, "shop") and not for_webhook(message, "blog")


def test_the_signature_is_an_hmac_sha256_of_the_body():
    body = json.dumps({"id": "x"}).encode()
    assert signature("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "https://localhost/hook", "http://[::1]:80/x",
                                 "https://hooks.example.com/redis"])
def test_webhook_urls_on_loopback_or_https(url):
    assert webhook_url(url) == url


@pytest.mark.parametrize("url, said", [
    ("http://10.0.0.1/hook", "on loopback"), ("http://example.com/x", "on loopback"), ("not a url", "http(s)"),
    ("", "http(s)"), ("ftp://127.0.0.1/x", "http(s)"), ("https://user:pw@example.com/x", "credentials"),
    ("https://example.com:99999/x", "invalid port"), ("http://[::1", "not a URL"), ("https://[zz]/", "not a URL"),
    ("http://[zz]/x", "not a URL"), ("https://u:pw@[zz]/x", "user:password@")])
def test_other_webhook_urls_are_refused_naming_why(url, said):
    with pytest.raises(InvalidWebhookUrl) as refused:
        webhook_url(url)
    assert said in str(refused.value) and refused.value.status == 400 and refused.value.rule == "webhook-url"
    assert "pw" not in str(refused.value)


def test_registering_a_webhook_twice_is_one_webhook_and_removed_it_may_come_back():
    assert Webhook.id_for("http://127.0.0.1:1/x", None) == Webhook.id_for("http://127.0.0.1:1/x", None)
    assert Webhook.id_for("http://127.0.0.1:1/x", None) != Webhook.id_for("http://127.0.0.1:1/x", "shop")
    webhook = Webhook(url="http://127.0.0.1:1/x", app="shop", registered_at=AT)
    webhook.register_again(AT)  # registered: nothing happens
    webhook.remove()
    webhook.remove()
    webhook.register_again(AT)
    assert [type(e).__name__ for e in webhook.collect_events()] == ["Registered", "Removed", "RegisteredAgain"]
    assert not webhook.removed
