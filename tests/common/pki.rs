//! A test certificate authority for the HTTPS tests, made with rcgen: the
//! CA and the server certificates it signs, as PEM files.
#![allow(dead_code)] // each test binary uses its own part of it

use std::path::PathBuf;

use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};

use super::common::TempDir;

/// A test CA and the certificates it signs, as PEM files in `dir`.
pub struct Pki {
    dir: TempDir,
    ca_key: KeyPair,
    ca_params: CertificateParams,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = TempDir::new("https-pki");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Loomiere test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        dir.write("ca.pem", ca.pem().as_bytes());
        Pki {
            dir,
            ca_key,
            ca_params,
        }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A certificate for `names`, valid until `not_after` (None: years),
    /// written as `<label>.pem` and `<label>.key`; returns both paths.
    pub fn issue(
        &self,
        label: &str,
        names: &[&str],
        not_after: Option<time::OffsetDateTime>,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        if let Some(not_after) = not_after {
            params.not_before = not_after - time::Duration::days(30);
            params.not_after = not_after;
        }
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("signed");
        let cert_path = self
            .dir
            .write(&format!("{label}.pem"), cert.pem().as_bytes());
        let key_path = self
            .dir
            .write(&format!("{label}.key"), key.serialize_pem().as_bytes());
        (cert_path, key_path)
    }
}
