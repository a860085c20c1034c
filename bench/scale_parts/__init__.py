"""bench/scale.py's parts (a folder: `make bench` runs bench/*.py only, and these are no benchmark)."""
