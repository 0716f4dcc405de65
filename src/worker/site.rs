//! What a worker serves: the validated options compiled, by the concern
//! that owns each part, into the structures that answer requests — the
//! virtual hosts and their routes (`route`), each host's access rules
//! (`access`), the country database, the per-address limits and the route
//! functions. The master compiles a site at start and on each reload,
//! before forking the workers that serve it.

use std::rc::Rc;

use crate::access::HostAccess;
use crate::access::geoip::GeoIp;
use crate::access::limits::LimitSettings;
use crate::options::{HostTlsOptions, MimeTable, Options, OptionsError};
use crate::route::lua::RouteLua;
use crate::route::rewrite::Route;
use crate::route::vhost;
use crate::route::{VirtualHost, VirtualHosts};
use crate::stats::StatsRegion;
use crate::stats::columns::{self, UNKNOWN_HOST};
use crate::stream::hints::HintTable;
use crate::tls::{TlsHost, TlsSite};

pub struct Site {
    pub options: Options,
    pub vhosts: VirtualHosts,
    /// Each host's access rules and CORS and caching headers, by host index.
    access: Vec<HostAccess>,
    pub mimes: MimeTable,
    /// The counters' column of each virtual host and of its folder, by host
    /// index (named in the shared region by the master).
    host_columns: Vec<usize>,
    /// By host index, then folder index.
    folder_columns: Vec<Vec<usize>>,
    /// The route functions' Lua state, when any host has one.
    pub route_lua: Option<RouteLua>,
    /// The country database (`options.geoip`), mapped by the master.
    pub geoip: Option<Rc<GeoIp>>,
    /// `options.limits`, compiled; None = no per-client limits.
    pub limits: Option<LimitSettings>,
    /// Where players' reports meet their streams (shared by all workers).
    pub hint_table: &'static HintTable,
    /// The HTTPS configuration, when `options.tls` is set.
    pub tls: Option<TlsSite>,
    /// The HTTPS port as bound (what `https = 'redirect'` points to); set
    /// by the master once its sockets are bound.
    pub https_port: u16,
}

impl Site {
    /// Compiles what workers serve from `options` (already validated), and
    /// names the counters' columns of its hosts and folders in `region` (a
    /// name keeps its column across reloads).
    pub fn compile(
        options: &Options,
        region: &StatsRegion,
        hint_table: &'static HintTable,
    ) -> Result<Site, OptionsError> {
        let vhosts = VirtualHosts::compile(options)?;
        let access = compile_access(options)?;
        let globals = region.globals();
        let host_columns = options
            .hosts
            .iter()
            .map(|host| {
                globals
                    .hosts
                    .assign(columns::host_label(&host.pattern), UNKNOWN_HOST + 1)
            })
            .collect();
        let folder_columns = options
            .hosts
            .iter()
            .map(|host| {
                host.folders
                    .iter()
                    .map(|folder| globals.folders.assign(&folder.to_string_lossy(), 0))
                    .collect()
            })
            .collect();
        let geoip = match &options.geoip {
            Some(path) => Some(Rc::new(GeoIp::open(path)?)),
            None => None,
        };
        let limits = options
            .limits
            .as_ref()
            .map(LimitSettings::compile)
            .transpose()?;
        let country = geoip.clone().map(|geoip| move |ip| geoip.country(ip));
        let route_lua = RouteLua::load(options, country)?;
        let tls = compile_tls(options, false)?;
        Ok(Site {
            options: options.clone(),
            vhosts,
            access,
            mimes: options.mimes.clone(),
            host_columns,
            folder_columns,
            route_lua,
            geoip,
            limits,
            hint_table,
            tls,
            https_port: options.tls.as_ref().map_or(0, |tls| tls.port),
        })
    }

    /// What `loomiere -t` and a reload check beyond the options' own
    /// validation: every host pattern, route and access rule, the country
    /// database and the limits compile.
    pub fn check(options: &Options) -> Result<(), OptionsError> {
        for host in &options.hosts {
            vhost::compile_pattern(&host.pattern)?;
            for (i, route) in host.routes.iter().enumerate() {
                Route::compile(&host.pattern, i + 1, route)?;
            }
        }
        compile_access(options)?;
        if let Some(path) = &options.geoip {
            GeoIp::open(path)?;
        }
        if let Some(limits) = &options.limits {
            LimitSettings::compile(limits)?;
        }
        compile_tls(options, true)?;
        Ok(())
    }

    /// The access rules of `vhost`.
    pub fn access_of(&self, vhost: &VirtualHost) -> &HostAccess {
        &self.access[vhost.index]
    }

    /// The HTTPS settings of `vhost`.
    pub fn host_tls(&self, vhost: &VirtualHost) -> &HostTlsOptions {
        &self.options.hosts[vhost.index].tls
    }

    /// The certificate a request for `vhost` must have come in on: the
    /// host's own, else the listener's (0).
    pub fn host_certificate(&self, vhost: &VirtualHost) -> usize {
        self.tls
            .as_ref()
            .and_then(|tls| tls.host_certificates.get(vhost.index))
            .copied()
            .unwrap_or(0)
    }

    /// The counters' column of `vhost`.
    pub fn host_column(&self, vhost: &VirtualHost) -> usize {
        self.host_columns
            .get(vhost.index)
            .copied()
            .unwrap_or(UNKNOWN_HOST)
    }

    /// The counters' column of folder `folder` of `vhost`.
    pub fn folder_column(&self, vhost: &VirtualHost, folder: usize) -> Option<usize> {
        self.folder_columns
            .get(vhost.index)
            .and_then(|columns| columns.get(folder))
            .copied()
    }
}

/// The HTTPS configuration: every certificate loaded and checked; with
/// `announce`, one that expires within 14 days is logged as a warning (the
/// check that precedes every start and reload announces, once).
fn compile_tls(options: &Options, announce: bool) -> Result<Option<TlsSite>, OptionsError> {
    let Some(tls) = &options.tls else {
        return Ok(None);
    };
    let hosts = options
        .hosts
        .iter()
        .map(|host| {
            Ok(TlsHost {
                pattern: &host.pattern,
                regex: vhost::compile_pattern(&host.pattern)?,
                tls: &host.tls,
            })
        })
        .collect::<Result<Vec<_>, OptionsError>>()?;
    let (site, warnings) = TlsSite::compile(tls, hosts, crate::sys::unix_now())?;
    for warning in warnings.iter().filter(|_| announce) {
        log::warn!("{warning}");
    }
    Ok(Some(site))
}

fn compile_access(options: &Options) -> Result<Vec<HostAccess>, OptionsError> {
    options
        .hosts
        .iter()
        .map(|host| HostAccess::compile(&host.pattern, &host.access))
        .collect()
}
