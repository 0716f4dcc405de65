//! Certificates and keys from PEM files: a chain and its private key made
//! into the `CertifiedKey` rustls signs with, after checking that they
//! belong together and that the certificate is valid now.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::options::OptionsError;

/// A certificate warns this long before it expires.
pub const EXPIRY_WARNING_SECS: i64 = 14 * 86_400;

/// A loaded certificate chain and key.
pub struct LoadedCertificate {
    pub key: Arc<CertifiedKey>,
    /// When the leaf certificate stops being valid, Unix seconds.
    pub not_after: i64,
    /// The leaf's subject, for messages.
    pub subject: String,
}

/// Loads `cert` (a PEM chain, leaf first) and `key` (PEM PKCS#8, PKCS#1 or
/// SEC1: RSA, ECDSA P-256/P-384 or Ed25519) for `option` (the option's name
/// in messages), refusing an unreadable file, a key that does not match the
/// certificate, and a certificate that is not valid at `now`.
pub fn load(
    option: &str,
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<LoadedCertificate, OptionsError> {
    let fail = |path: &Path, reason: String| {
        OptionsError::option(option, format!("{}: {reason}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(cert, describe_pem(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(cert, describe_pem(e)))?;
    let Some(leaf) = chain.first() else {
        return Err(fail(cert, "holds no PEM certificate".into()));
    };
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(key, describe_pem(e)))?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| fail(key, format!("the key cannot be used: {e}")))?;
    let (not_before, not_after, subject) = validity(leaf).map_err(|e| fail(cert, e))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        fail(
            key,
            format!("does not match the certificate in {}", cert.display()),
        )
    })?;
    if now < not_before {
        return Err(fail(cert, format!("'{subject}' is not valid yet")));
    }
    if now >= not_after {
        return Err(fail(
            cert,
            format!(
                "'{subject}' expired on {}",
                crate::http::date::format(not_after)
            ),
        ));
    }
    Ok(LoadedCertificate {
        key: Arc::new(certified),
        not_after,
        subject,
    })
}

/// The leaf's validity (Unix seconds) and subject.
fn validity(leaf: &CertificateDer<'_>) -> Result<(i64, i64, String), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let validity = parsed.validity();
    Ok((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
        parsed.subject().to_string(),
    ))
}

fn describe_pem(error: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match error {
        Error::Io(e) => format!("cannot be read: {e}"),
        Error::NoItemsFound => "holds no PEM item of the expected kind".into(),
        other => format!("is not valid PEM: {other:?}"),
    }
}
