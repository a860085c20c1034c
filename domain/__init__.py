"""The business of managed Redis addons, in pure Python: no I/O, no clock reads."""
