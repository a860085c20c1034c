"""Restarting apps after their environment changed: Docker containers or an HTTP hook."""
