//! TLS on the PostgreSQL endpoint (`[server] pg_tls_cert` and `pg_tls_key`): the certificate
//! chain and key are read and checked when the server starts (a missing or unreadable file stops
//! it, naming the file), and with TLS configured every connection must use it: a client that does
//! not ask for TLS is refused, never served in plaintext.

use std::path::Path;
use std::sync::Arc;

use datafusion_postgres::pgwire;
use pgwire::tokio::tokio_rustls::{TlsAcceptor, rustls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The endpoint's TLS acceptor.
#[derive(Clone)]
pub struct PgTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgTls")
    }
}

impl PgTls {
    /// Reads the PEM certificate chain at `cert` and the private key at `key`; the error names
    /// the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<PgTls, String> {
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("{}: {e}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!(
                "{}: no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
                cert.display()
            ));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            format!(
                "{}: no private key read ({e}; expected a PEM PKCS#8, PKCS#1 or SEC1 key)",
                key.display()
            )
        })?;
        // The process's provider (the binary installs one at start); TLS without one would have
        // to pick among the linked backends, and rustls refuses to.
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .ok_or_else(|| "no TLS crypto provider is installed in this process".to_owned())?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS settings: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| {
                format!(
                    "{} and {}: the key does not fit the certificate ({e})",
                    cert.display(),
                    key.display()
                )
            })?;
        Ok(PgTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The acceptor pgwire negotiates TLS with.
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }
}
