//! TLS for SIP (rustls with the aws-lc-rs provider): the server's certificate from PEM files
//! (read again on SIGHUP), and the client config that verifies peers against the system roots
//! or a given CA file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Installs the process-wide crypto provider once (several may be compiled in).
pub(crate) fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The certificate SIP over TLS presents, read from `tls-cert` and `tls-key` at start and
/// again on each [`ServerCert::reload`] (SIGHUP): a renewed certificate is taken up without a
/// restart, so calls in progress go on. Connections keep the certificate they started with.
#[derive(Debug)]
pub(crate) struct ServerCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServerCert {
    pub(crate) fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerCert>> {
        Ok(Arc::new(ServerCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(read_pair(cert, key)?)),
        }))
    }

    /// Reads the files again. On an error the certificate in use stays.
    pub(crate) fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(read_pair(&self.cert, &self.key)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// A certificate chain and its private key, checked to belong together.
fn read_pair(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    install_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read `tls-cert` {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "`tls-cert` {} is not a PEM certificate chain",
                cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!("`tls-cert` {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("`tls-key` {} is not a PEM private key", key.display()))?;
    CertifiedKey::from_der(certs, key, &rustls::crypto::aws_lc_rs::default_provider())
        .context("`tls-cert` and `tls-key` do not form a usable pair")
}

/// The server side of SIP over TLS, presenting `cert`.
pub(crate) fn server_config(cert: &Arc<ServerCert>) -> Arc<rustls::ServerConfig> {
    install_provider();
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(cert.clone()),
    )
}

pub(crate) fn client_config(ca: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            for c in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read CA file {}", path.display()))?
            {
                roots.add(c.with_context(|| format!("bad certificate in {}", path.display()))?)?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
