"""The redis-addons engine, for embedding: `from engine import build, Settings`."""

__all__ = ["Engine", "Settings", "build"]


def __getattr__(name):
    # Lazy, so that adapters importing engine.ports do not pull in the composition root.
    if name == "build":
        from engine.bootstrap import build

        return build
    if name == "Engine":
        from engine.app import Engine

        return Engine
    if name == "Settings":
        from engine.settings import Settings

        return Settings
    raise AttributeError(name)
