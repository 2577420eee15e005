//! TLS for SIP (rustls with the aws-lc-rs provider): the server config from PEM files, and the
//! client config that verifies peers against the system roots or a given CA file.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Installs the process-wide crypto provider once (several may be compiled in).
pub(crate) fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub(crate) fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
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
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("`tls-cert` and `tls-key` do not form a usable pair")?;
    Ok(Arc::new(cfg))
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
