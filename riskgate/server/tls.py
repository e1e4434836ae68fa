"""TLS files: read and check PEM files before grpc sees them (grpc only reports that it
cannot bind, or aborts the process on an empty key)."""

from __future__ import annotations

import ssl


class TLSFileError(ValueError):
    """A TLS file that cannot be used; the message names the setting or flag."""


def read_pem(name: str, path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise TLSFileError(f"{name}: cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise TLSFileError(f"{name}: {path} is not a PEM file")
    return data


def check_tls_files(pair: tuple[str, str | None, str | None], ca: tuple[str, str | None]) -> None:
    """``pair``: (name, certificate chain file, private key file); ``ca``: (name, CA file).
    Raises :class:`TLSFileError` if the key is not the chain's or the CA file holds no CA
    certificate (checked with the standard library's TLS, which reads the same PEM files)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    name, cert, key = pair
    if cert is not None and key is not None:
        try:
            ctx.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise TLSFileError(
                f"{name}: {cert} and {key} are not a certificate chain and its private key ({exc})"
            ) from None
    ca_name, ca_file = ca
    if ca_file is not None:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise TLSFileError(
                f"{ca_name}: {ca_file} holds no usable CA certificate ({exc})"
            ) from None
