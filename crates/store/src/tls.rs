//! TLS to PostgreSQL, read from the connection string the way libpq reads it.
//!
//! `sslmode` takes libpq's values:
//! - `disable`: plain TCP.
//! - `prefer` (the default, as in libpq): TLS when the server offers it, else plain; the
//!   certificate is not checked.
//! - `require`: TLS or no connection; the certificate is not checked, unless `sslrootcert`
//!   is given, which makes it `verify-ca` (libpq does the same).
//! - `verify-ca`: TLS, and the server's certificate must chain to a trusted root.
//! - `verify-full`: as `verify-ca`, and the certificate must name the host connected to.
//!
//! `sslrootcert` is a PEM file of trusted roots, or `system` for the operating system's
//! store. The verifying modes use the system store when it is not given (libpq would read
//! `~/.postgresql/root.crt`, which a container does not have). `allow` and client
//! certificates (`sslcert`, `sslkey`) are refused with a reason rather than ignored.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, so these parameters are
//! taken out of the string before it is parsed, and the TLS side is rustls (ring) here.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{VerifierBuilderError, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{StoreError, StoreResult};

/// How much TLS a connection insists on (libpq's `sslmode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> StoreResult<SslMode> {
        match value {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            "allow" => Err(invalid(
                "sslmode=allow is not supported (it tries plain TCP first); use prefer or require",
            )),
            other => Err(invalid(format!(
                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))),
        }
    }

    /// What tokio-postgres is told: it negotiates, rustls verifies.
    fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }
}

/// Where trusted roots come from (libpq's `sslrootcert`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCerts {
    /// The operating system's store (`sslrootcert=system`).
    System,
    /// A PEM file of one or more certificates.
    File(PathBuf),
}

/// The TLS parameters of a connection string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsParameters {
    pub mode: SslMode,
    pub root_certs: Option<RootCerts>,
}

impl TlsParameters {
    /// The mode in force: `require` with roots given verifies the chain, as in libpq.
    pub fn effective_mode(&self) -> SslMode {
        match (self.mode, &self.root_certs) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        }
    }
}

/// A connection string with its TLS parameters taken out, and those parameters.
#[derive(Debug)]
pub struct SplitUrl {
    /// What tokio-postgres parses.
    pub rest: String,
    pub tls: TlsParameters,
}

/// Takes `sslmode` and `sslrootcert` out of a URL (`postgres://…?sslmode=…`) or a libpq
/// key/value string (`host=… sslmode=…`).
pub fn split_url(url: &str) -> StoreResult<SplitUrl> {
    let mut tls = TlsParameters::default();
    let mut take = |key: &str, value: &str| -> StoreResult<bool> {
        match key {
            "sslmode" => tls.mode = SslMode::parse(value)?,
            "sslrootcert" if value.trim().is_empty() => {
                return Err(invalid("sslrootcert is empty: give a PEM file or `system`"));
            }
            "sslrootcert" => {
                tls.root_certs = Some(match value {
                    "system" => RootCerts::System,
                    path => RootCerts::File(PathBuf::from(path)),
                });
            }
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(invalid(format!(
                    "{key}: client certificates are not supported; authenticate with a password"
                )));
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if is_url(url) {
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Only our own parameters are decoded here: the others (a password among
            // them) are tokio-postgres's to read, and never appear in our errors.
            let key = percent_decode(key).unwrap_or_default();
            if key.starts_with("ssl") {
                if !take(&key, &percent_decode(value)?)? {
                    kept.push(pair);
                }
            } else {
                kept.push(pair);
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for (key, value) in key_values(url)? {
            if !take(&key, &value)? {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{quoted}'"));
            }
        }
        kept.join(" ")
    };
    Ok(SplitUrl { rest, tls })
}

/// The rustls connector for `tls`: its roots are read here, so a missing or empty CA file
/// fails at start-up, not on the first connection.
pub fn connector(tls: &TlsParameters) -> StoreResult<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match tls.effective_mode() {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            Arc::new(EncryptOnly { algorithms })
        }
        mode @ (SslMode::VerifyCa | SslMode::VerifyFull) => {
            let roots = root_store(tls.root_certs.as_ref().unwrap_or(&RootCerts::System))?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|error: VerifierBuilderError| {
                        invalid(format!("sslrootcert: {error}"))
                    })?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly { inner: webpki })
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(format!("TLS: {error}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Applies the negotiation of `tls` to a parsed configuration.
pub fn apply(config: &mut tokio_postgres::Config, tls: &TlsParameters) {
    config.ssl_mode(tls.mode.negotiation());
}

fn root_store(source: &RootCerts) -> StoreResult<RootCertStore> {
    let mut store = RootCertStore::empty();
    match source {
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(invalid(
                    "sslrootcert: no system root certificates found (install ca-certificates, or \
                     give sslrootcert=/path/to/ca.pem)",
                ));
            }
        }
        RootCerts::File(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|error| invalid(format!("sslrootcert {shown}: {error}")))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| invalid(format!("sslrootcert {shown}: {error}")))?;
            let (added, _ignored) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(invalid(format!(
                    "sslrootcert {shown}: holds no usable certificate"
                )));
            }
        }
    }
    Ok(store)
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::InvalidUrl(reason.into())
}

/// `prefer` and `require` without roots: the channel is encrypted and the handshake's
/// signatures are checked, but any certificate is taken (libpq's behaviour; it protects
/// against passive capture, not against an active man in the middle).
#[derive(Debug)]
struct EncryptOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Whether a connection string is a URL (tokio-postgres's rule: by its scheme) rather than
/// libpq key/value pairs, whose values may hold `://` too.
fn is_url(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// Checks that tokio-postgres saw no TLS parameter this module did not: a URL with an
/// unencoded `?` in its password, say, would hide `sslmode=require` from [`split_url`],
/// and the connection must then fail rather than fall back to `prefer`.
pub fn check_nothing_hidden(parsed: &tokio_postgres::Config) -> StoreResult<()> {
    if parsed.get_ssl_mode() != tokio_postgres::config::SslMode::Prefer {
        return Err(invalid(
            "sslmode could not be read from the connection string: percent-encode '?', '&', \
             '@' and '/' in the user name and password",
        ));
    }
    Ok(())
}

/// Decodes `%XX` escapes (and `+` is left alone, as in tokio-postgres). Errors never show
/// the text: it may be part of a password.
fn percent_decode(text: &str) -> StoreResult<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| invalid("bad percent escape in an ssl parameter"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("an ssl parameter is not UTF-8 once decoded"))
}

/// The pairs of a libpq key/value string: `key = value`, values optionally single-quoted,
/// backslash escaping the next character.
fn key_values(text: &str) -> StoreResult<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // Not echoing the text: an unquoted password with a space ends up here.
            return Err(invalid(
                "expected key=value pairs (quote a value holding spaces: key='a b')",
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(invalid(format!("unterminated quote in the value of {key}")));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_tls_parameters_and_keep_the_rest() {
        let split = split_url(
            "postgres://u:p@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(split.rest, "postgres://u:p@db:5432/x?application_name=a");
        assert_eq!(split.tls.mode, SslMode::VerifyFull);
        assert_eq!(
            split.tls.root_certs,
            Some(RootCerts::File(PathBuf::from("/etc/ca.pem")))
        );
        let plain = split_url("postgres://u@h/db").unwrap();
        assert_eq!(plain.rest, "postgres://u@h/db");
        assert_eq!(plain.tls, TlsParameters::default());
        assert_eq!(plain.tls.mode, SslMode::Prefer);
    }

    #[test]
    fn key_value_strings_are_split_and_requoted() {
        let split =
            split_url("host=db  user = 'o\\'brien' sslmode=require sslrootcert=system dbname=x")
                .unwrap();
        assert_eq!(split.rest, "host='db' user='o\\'brien' dbname='x'");
        assert_eq!(split.tls.mode, SslMode::Require);
        assert_eq!(split.tls.root_certs, Some(RootCerts::System));
        assert_eq!(split.tls.effective_mode(), SslMode::VerifyCa);
        let parsed: tokio_postgres::Config = split.rest.parse().unwrap();
        assert_eq!(parsed.get_user(), Some("o'brien"));
    }

    #[test]
    fn unsupported_choices_are_refused_with_a_reason() {
        for (url, reason) in [
            ("postgres://h/db?sslmode=allow", "allow is not supported"),
            ("postgres://h/db?sslmode=verify", "is not one of"),
            ("postgres://h/db?sslcert=/c.pem", "client certificates"),
            ("host=h sslmode='require", "unterminated quote"),
            ("postgres://h/db?sslrootcert=", "sslrootcert is empty"),
        ] {
            let error = split_url(url).unwrap_err().to_string();
            assert!(error.contains(reason), "{url}: {error}");
        }
    }

    #[test]
    fn key_values_with_urls_in_them_are_not_urls_and_errors_hide_values() {
        let split =
            split_url("host=h password=s3cret://x application_name=http://app sslmode=require")
                .unwrap();
        assert_eq!(split.tls.mode, SslMode::Require);
        assert!(!split.rest.contains("sslmode"));
        let error = split_url("host=h password=Sup3r Secret")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("Secret"), "{error}");
        // Values other than ours are not decoded, so a password's bad escape is
        // tokio-postgres's to report (and it does not print it either).
        let split = split_url("postgres://u:100%off@h/db?sslmode=disable").unwrap();
        assert_eq!(split.tls.mode, SslMode::Disable);
        let error = split_url("postgres://u@h/db?sslrootcert=%ZZsecret")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn a_hidden_sslmode_fails_closed() {
        // An unencoded '?' in the password hides sslmode=require from split_url.
        let split = split_url("postgres://u:pa?ss@127.0.0.1:5432/db?sslmode=require").unwrap();
        if let Ok(parsed) = split.rest.parse::<tokio_postgres::Config>() {
            assert!(check_nothing_hidden(&parsed).is_err());
        }
        let fine: tokio_postgres::Config = "postgres://u@h/db".parse().unwrap();
        assert!(check_nothing_hidden(&fine).is_ok());
    }

    #[test]
    fn missing_or_empty_root_files_fail_when_the_connector_is_built() {
        let missing = TlsParameters {
            mode: SslMode::VerifyFull,
            root_certs: Some(RootCerts::File(PathBuf::from("/nonexistent/ca.pem"))),
        };
        assert!(connector(&missing).is_err());
        let empty =
            std::env::temp_dir().join(format!("threesigma-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let empty_roots = TlsParameters {
            mode: SslMode::Require,
            root_certs: Some(RootCerts::File(empty.clone())),
        };
        let error = connector(&empty_roots).err().unwrap().to_string();
        std::fs::remove_file(&empty).unwrap();
        assert!(error.contains("no usable certificate"), "{error}");
        assert!(connector(&TlsParameters::default()).is_ok());
    }
}
