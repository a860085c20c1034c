"""In-memory implementations of the engine's ports (engine/ports.py), for unit tests of the
engine's coordination: Docker hosts, Redis servers, secrets, certificates, backups, app restarts, the data directory's lock.

Each can be told to fail a call a number of times (TransientError) or for good (EffectError):
`runtime.fail("start_node", times=2)`, `runtime.fail_for_good("start_node", host="host-b")`.
"""

from tests.unit.fakes.crash import Crash, CrashSwitch
from tests.unit.fakes.docker import FakeRuntime
from tests.unit.fakes.event_log import InMemoryEventLog
from tests.unit.fakes.redis import FakeRedisAdmin
from tests.unit.fakes.services import (FakeAppRestarter, FakeBackupStore, FakeCertificates, FakeDataLock,
                                      FakeSecretStore)

__all__ = ["Crash", "CrashSwitch", "FakeAppRestarter", "FakeBackupStore", "FakeCertificates", "FakeDataLock", "FakeRedisAdmin", "FakeRuntime",
           "FakeSecretStore", "InMemoryEventLog"]
