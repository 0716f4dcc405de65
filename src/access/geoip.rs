//! Countries of client addresses, from a MaxMind DB file (GeoLite2-Country,
//! DB-IP lite, or any MMDB whose records carry `country.iso_code`), read with
//! the `maxminddb` crate. The master maps the file when it loads the options
//! (at start and on each reload), so every worker of a generation shares one
//! read-only mapping and a reload picks up a new file.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Mmap, PathElement, Reader};

use super::cidr::client_ip;
use crate::options::OptionsError;

pub struct GeoIp {
    reader: Reader<Mmap>,
    path: PathBuf,
}

/// Where the country code sits in a record.
const ISO_CODE_PATH: [PathElement<'static>; 2] =
    [PathElement::Key("country"), PathElement::Key("iso_code")];

impl GeoIp {
    /// Maps the database at `path`; the error names `options.geoip`.
    pub fn open(path: &Path) -> Result<GeoIp, OptionsError> {
        let reader = crate::sys::map_maxmind_database(path).map_err(|e| {
            OptionsError::option(
                "geoip",
                format!(
                    "{} cannot be used as a MaxMind database: {e}",
                    path.display()
                ),
            )
        })?;
        Ok(GeoIp {
            reader,
            path: path.to_path_buf(),
        })
    }

    /// The upper-case ISO 3166 code of `ip`'s country, or None when the
    /// database does not know it (private addresses, gaps).
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let found = match self.reader.lookup(client_ip(ip)) {
            Ok(found) => found,
            Err(e) => {
                log::debug!("geoip {}: lookup of {ip}: {e}", self.path.display());
                return None;
            }
        };
        match found.decode_path::<String>(&ISO_CODE_PATH) {
            Ok(code) => code
                .filter(|code| code.len() == 2)
                .map(|code| code.to_ascii_uppercase()),
            Err(e) => {
                log::warn!("geoip {}: record of {ip}: {e}", self.path.display());
                None
            }
        }
    }
}
