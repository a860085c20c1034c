"""Refusals about hosts, each naming its rule."""

from domain.errors import DomainError


class InvalidHost(DomainError):
    """What was given to describe a host cannot be one."""

    rule = "invalid-host"
    status = 400


class UnknownHost(DomainError):
    rule = "unknown-host"
    status = 404


class HostNotUsable(DomainError):
    """The host does not answer, shows a certificate not of ours, lacks images, or was removed."""

    rule = "host-not-usable"
    status = 422


class HostNotEmpty(DomainError):
    """A host leaves the installation only once it holds no node and no drain runs on it."""

    rule = "host-not-empty"
    status = 409
