"""What lives in the data directory on one machine, shared through PostgreSQL by every engine process of an
installation whose event store is PostgreSQL (REDIS_ADDONS_POSTGRES_*): addon passwords and webhook signing
secrets, the CA, the backup keyring, the API tokens (sealed with the installation key, sealing.py), the
checkpoints of read models kept in memory, and a lock per process identity. shared_state.py picks these or
the files of the data directory; the engine reaches them through its ports and never imports psycopg."""
