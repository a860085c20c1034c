"""TLS for the nodes: the installation's own small certificate authority."""

from adapters.tls.certificates import CertificateAuthority, CertificateAuthorityError

__all__ = ["CertificateAuthority", "CertificateAuthorityError"]
