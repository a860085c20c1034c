"""Known data of mixed types spread over the 5 databases, written and checked with redis-py."""

from __future__ import annotations

import redis.asyncio as redis

DATABASES = range(5)


def expected(keys: int = 10_000) -> dict[int, dict[str, object]]:
    """keys spread over the databases, round-robin over string, hash, list, set and sorted set."""
    data: dict[int, dict[str, object]] = {db: {} for db in DATABASES}
    for i in range(keys):
        db, kind = i % 5, (i // 5) % 5
        name = f"key:{i}"
        data[db][name] = [
            f"value-{i}",
            {"field": str(i), "other": f"x{i}"},
            [f"a{i}", f"b{i}", f"c{i}"],
            {f"m{i}", f"n{i}"},
            {f"s{i}": float(i), f"t{i}": float(i + 1)},
        ][kind]
    return data


async def write(url: str, data) -> None:
    for db, values in data.items():
        client = redis.from_url(url, db=db)
        async with client.pipeline(transaction=False) as pipe:
            for name, value in values.items():
                if isinstance(value, str):
                    pipe.set(name, value)
                elif isinstance(value, dict) and all(isinstance(v, float) for v in value.values()):
                    pipe.zadd(name, value)
                elif isinstance(value, dict):
                    pipe.hset(name, mapping=value)
                elif isinstance(value, list):
                    pipe.rpush(name, *value)
                else:
                    pipe.sadd(name, *value)
            await pipe.execute()
        await client.aclose()


async def read(url: str, data) -> dict[int, dict[str, object]]:
    """What the server holds under the same names, in the same shapes; plus a count per database."""
    found = {}
    for db, values in data.items():
        client = redis.from_url(url, db=db, decode_responses=True)
        assert await client.dbsize() == len(values), f"database {db} holds another number of keys"
        async with client.pipeline(transaction=False) as pipe:
            for name, value in values.items():
                if isinstance(value, str):
                    pipe.get(name)
                elif isinstance(value, dict) and all(isinstance(v, float) for v in value.values()):
                    pipe.zrange(name, 0, -1, withscores=True)
                elif isinstance(value, dict):
                    pipe.hgetall(name)
                elif isinstance(value, list):
                    pipe.lrange(name, 0, -1)
                else:
                    pipe.smembers(name)
            answers = await pipe.execute()
        await client.aclose()
        found[db] = {}
        for (name, value), answer in zip(values.items(), answers):
            if isinstance(value, dict) and all(isinstance(v, float) for v in value.values()):
                answer = dict(answer)
            found[db][name] = answer
    return found
