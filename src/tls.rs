//! HTTPS for `serve` (`--tls-cert`, `--tls-key`): rustls with the ring provider, TLS 1.2 and 1.3, HTTP/1.1.
//! The private key is refused when group or others may read it, like the signing keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The PEM files `serve` terminates TLS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1), readable by the server's user only.
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("TLS: {path} holds no PEM certificate{detail}")]
    NoCertificate { path: PathBuf, detail: String },
    #[error("TLS: {path} holds no PEM private key ({detail})")]
    NoKey { path: PathBuf, detail: String },
    #[error(transparent)]
    KeyFile(#[from] crate::keys::KeyError),
    #[error("TLS: the certificate in {cert} and the key in {key} do not go together: {source}")]
    Mismatch { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// Reads and checks both files, so that a bad certificate stops `serve` before it listens.
pub fn server_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TlsError> {
    let chain = read_chain(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Mismatch { cert: files.cert.clone(), key: files.key.clone(), source })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::NoCertificate { path: path.to_path_buf(), detail: format!(" ({err})") })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_path_buf(), detail: String::new() });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let metadata = std::fs::metadata(path).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })?;
    #[cfg(unix)]
    crate::keys::check_permissions(path, &metadata)?;
    #[cfg(not(unix))]
    let _ = metadata;
    let bytes = std::fs::read(path).map_err(|source| TlsError::Io { path: path.to_path_buf(), source })?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|err| TlsError::NoKey { path: path.to_path_buf(), detail: err.to_string() })
}
