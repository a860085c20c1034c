"""TLS for the nodes: the installation's own small certificate authority."""

from adapters.tls.certificates import CA_CERT_FILE, CertificateAuthority, CertificateAuthorityError

__all__ = ["CA_CERT_FILE", "CertificateAuthority", "CertificateAuthorityError"]
