//! TLS for outbound calls: which certificate authorities to trust, which client
//! certificate to show, and errors that say what failed in words a person can act
//! on. Feature `http-client`.
//!
//! By default the system's roots are trusted (through `rustls-platform-verifier`,
//! so a CA installed on the machine is honoured). A CA file replaces them, as
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` does in the OpenTelemetry SDKs.
//!
//! ```no_run
//! use swarm_obs::tls::TlsOptions;
//! let tls = TlsOptions {
//!     ca_file: Some("/etc/otel/ca.pem".into()),
//!     ..TlsOptions::default()
//! };
//! let loaded = tls.load().unwrap(); // reads and checks the files once
//! # let _ = loaded;
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// Largest certificate or key file read: PEM bundles of every public root are
/// about 200 KiB.
const MAX_PEM_FILE: u64 = 4 << 20;

/// What to trust and what to show, as configured (paths, not yet read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain, for mutual TLS.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate. Only for self-signed services on a trusted
    /// network; whoever sits on the path can read and change the traffic.
    pub insecure: bool,
}

/// A TLS setting cannot be used; the message names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file was meant to hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind expected.
    #[error("{path} holds no {what} in PEM form (expected a -----BEGIN {pem}----- block)")]
    NoPem {
        /// What was looked for.
        what: &'static str,
        /// The PEM label expected.
        pem: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The settings do not fit together or rustls refused them.
    #[error("{0}")]
    Invalid(String),
}

/// Certificates read and checked, ready for a client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LoadedTls {
    roots: Option<Arc<Vec<CertificateDer<'static>>>>,
    client: Option<Arc<ClientIdentity>>,
    insecure: bool,
}

/// A client certificate chain and its key, as read.
#[derive(Debug)]
struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The key file as read, for ureq, which takes keys as PEM.
    key_pem: Vec<u8>,
}

impl TlsOptions {
    /// Reads the files and checks that they fit (the key belongs to the
    /// certificate), so a mistake is reported at start-up, not at the first call.
    pub fn load(&self) -> Result<LoadedTls, TlsError> {
        let roots = match &self.ca_file {
            Some(path) => {
                let certs = read_certs(path, "CA certificate file")?;
                Some(Arc::new(certs))
            }
            None => None,
        };
        let client = match (&self.client_certificate, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert, "client certificate file")?;
                let (key, key_pem) = read_key(key)?;
                Some(Arc::new(ClientIdentity {
                    chain,
                    key,
                    key_pem,
                }))
            }
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(TlsError::Invalid(
                    "mutual TLS needs both a client certificate and its key (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY, or client_certificate and client_key in config.toml); one of them is missing".into(),
                ));
            }
        };
        let loaded = LoadedTls {
            roots,
            client,
            insecure: self.insecure,
        };
        // Building the rustls configuration checks that the key matches the
        // certificate, which ureq would otherwise find only when connecting.
        if loaded.client.is_some() {
            loaded.rustls_config(&[])?;
        }
        Ok(loaded)
    }
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE).read_to_end(&mut bytes))
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })?;
    Ok(bytes)
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path, what)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what: "certificate",
            pem: "CERTIFICATE",
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<(PrivateKeyDer<'static>, Vec<u8>), TlsError> {
    let pem = read_file(path, "client key file")?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NoPem {
        what: "private key",
        pem: "PRIVATE KEY",
        path: path.to_owned(),
    })?;
    Ok((key, pem))
}

impl LoadedTls {
    /// Whether server certificates go unchecked.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The same settings for ureq (the [`HttpClient`](crate::http_client::HttpClient)).
    pub(crate) fn ureq_config(&self) -> TlsConfig {
        let roots = match &self.roots {
            Some(certs) => {
                let certs: Vec<Certificate<'static>> = certs
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                    .collect();
                RootCerts::new_with_certs(&certs)
            }
            None => RootCerts::PlatformVerifier,
        };
        // `load` checked the key, so it parses here too.
        let client = self.client.as_ref().and_then(|id| {
            let chain: Vec<Certificate<'static>> = id
                .chain
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            let key = PrivateKey::from_pem(&id.key_pem).ok()?;
            Some(ClientCert::new_with_certs(&chain, key))
        });
        TlsConfig::builder()
            .root_certs(roots)
            .client_cert(client)
            .disable_verification(self.insecure)
            .build()
    }

    /// A rustls client configuration offering `alpn` (say `h2` for gRPC), for
    /// clients that drive rustls themselves. `insecure` is not offered here: it is
    /// for probes, which use the [`HttpClient`](crate::http_client::HttpClient).
    pub fn rustls_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        if self.insecure {
            return Err(TlsError::Invalid(
                "`insecure` applies to HTTP(S) probes only".into(),
            ));
        }
        // ring, as ureq uses: aws-lc-rs would need cmake to build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let invalid = |e: rustls::Error| TlsError::Invalid(format!("TLS setup: {e}"));
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(invalid)?;
        let builder = match &self.roots {
            Some(certs) => {
                let mut store = rustls::RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
                if added == 0 {
                    return Err(TlsError::Invalid(
                        "the CA file holds no certificate rustls can use as a root".into(),
                    ));
                }
                builder.with_root_certificates(store)
            }
            None => builder
                .dangerous()
                // Not dangerous: the platform verifier checks against the system's roots.
                .with_custom_certificate_verifier(Arc::new(
                    rustls_platform_verifier::Verifier::new(provider).map_err(invalid)?,
                )),
        };
        let mut config = match &self.client {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| {
                    TlsError::Invalid(format!(
                        "the client key does not fit the client certificate: {e}"
                    ))
                })?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// The rustls error behind `error`, when a TLS handshake or record failed.
pub fn rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(r);
        }
        cur = e.source();
    }
    None
}

/// Says in words what a failed TLS handshake with `host` means: unknown CA, a
/// name mismatch, an expired certificate, a refused client certificate.
///
/// ```
/// use swarm_obs::tls::describe_tls_failure;
/// let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
/// assert!(describe_tls_failure(&e, "otel.example:443").contains("expired"));
/// ```
pub fn describe_tls_failure(error: &rustls::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let what = match error {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "its certificate is signed by an unknown certificate authority (trust that CA with a CA file)".to_owned(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "its certificate does not match the host name (connect by a name the certificate lists)".to_owned()
            }
            C::Expired | C::ExpiredContext { .. } => "its certificate has expired".to_owned(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "its certificate is not valid yet (check the clocks)".to_owned()
            }
            C::Revoked => "its certificate is revoked".to_owned(),
            C::BadSignature | C::BadEncoding => "its certificate is malformed".to_owned(),
            other => format!("its certificate was refused ({other:?})"),
        },
        rustls::Error::AlertReceived(alert) => format!(
            "the server ended the handshake ({alert:?}); it may want a client certificate it trusts"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS there (is it an http:// endpoint?)".to_owned()
        }
        other => other.to_string(),
    };
    format!("TLS with {host} failed: {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_mismatched_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let none = TlsOptions {
            ca_file: Some(dir.path().join("absent.pem")),
            ..TlsOptions::default()
        };
        let e = none.load().unwrap_err().to_string();
        assert!(
            e.contains("absent.pem") && e.contains("CA certificate"),
            "{e}"
        );
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem at all").unwrap();
        let e = TlsOptions {
            ca_file: Some(junk.clone()),
            ..TlsOptions::default()
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        let e = TlsOptions {
            client_key: Some(junk),
            ..TlsOptions::default()
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(e.contains("both"), "{e}");
        assert!(TlsOptions::default().load().is_ok());
    }

    #[test]
    fn failures_are_told_in_words() {
        use rustls::CertificateError as C;
        let say = |c| describe_tls_failure(&rustls::Error::InvalidCertificate(c), "h:443");
        assert!(say(C::UnknownIssuer).contains("unknown certificate authority"));
        assert!(say(C::NotValidForName).contains("host name"));
        assert!(say(C::Expired).contains("expired"));
        assert!(say(C::Expired).contains("h:443"));
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(C::UnknownIssuer),
        );
        assert!(rustls_error(&io).is_some());
    }
}
