"""The `redis-addons` command: a client of the HTTP API, shaped after the reference's CLI."""
