//! The master process: binds the sockets, forks the workers and the monitor,
//! supervises them, and acts on signals. It serves no requests itself.
//!
//! Layer: above `worker` and `monitor`, which it forks; only `main` is above it.
//!
//! Signals are blocked and taken synchronously with `sigtimedwait`, so the
//! master's logic runs in one plain loop with no handlers:
//! SIGHUP reloads, SIGTERM/SIGINT drain, SIGQUIT exits at once, SIGCHLD reaps.
//! Each pass of that loop also runs the [`watchdog`] over the children.

mod listen;
mod watchdog;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::access::limits::LimitsRegion;
use crate::options::{KernelTls, Options, OptionsError, Overrides};
use crate::stats::{self, StatsRegion};
use crate::stream::hints::HintTable;
use crate::sys::signals::{self, ChildExit};
use crate::sys::{self, Account, Forked};
use crate::tls::tickets::TicketKeys;
use crate::worker::{self, Site};
use listen::{Port, reload_port, when_free};

/// Longest pause between restarts of a worker that keeps dying at start-up.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A worker that lived at least this long is restarted at once.
const HEALTHY_LIFETIME: Duration = Duration::from_secs(2);
/// How often the master wakes with nothing to do, to reap and schedule.
const MASTER_TICK: Duration = Duration::from_millis(500);
/// How long after `drain_timeout` the master waits for workers to cut their
/// last responses and exit before it kills them.
const WORKER_EXIT_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A worker accepting on listener `socket`.
    Worker {
        socket: usize,
    },
    Monitor,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Worker { socket } => write!(f, "worker #{socket}"),
            Role::Monitor => f.write_str("monitor"),
        }
    }
}

struct Child {
    pid: libc::pid_t,
    role: Role,
    generation: u64,
    stats_slot: Option<usize>,
    started: Instant,
    /// CLOCK_MONOTONIC microseconds at fork, for the watchdog.
    started_micros: u64,
    /// Killed by the watchdog, not yet reaped.
    stalled: bool,
}

struct PendingRestart {
    role: Role,
    at: Instant,
}

struct Master {
    options: Options,
    options_path: Option<PathBuf>,
    overrides: Overrides,
    /// The plain-HTTP and the HTTPS port, when on: one SO_REUSEPORT
    /// socket per worker of the current generation.
    plain: Option<Port>,
    tls: Option<Port>,
    admin: Option<TcpListener>,
    admin_address: Option<SocketAddr>,
    site: Option<Site>,
    account: Option<Account>,
    region: &'static StatsRegion,
    /// The per-client limit sketches, shared like `region`.
    limits: &'static LimitsRegion,
    /// Where players' reports meet their streams, shared like `region`.
    hints: &'static HintTable,
    children: Vec<Child>,
    generation: u64,
    free_slots: Vec<usize>,
    pending: Vec<PendingRestart>,
    /// Consecutive quick deaths per role, for the restart back-off.
    quick_deaths: Vec<(Role, u32)>,
    draining_until: Option<Instant>,
}

/// Loads, overrides and validates the options: the one path for start-up, `-t` and reload.
pub fn load_options(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Options, OptionsError> {
    let mut options = match path {
        Some(path) => Options::load(path)?,
        None => Options::defaults(),
    };
    options.apply(overrides);
    options.validate()?;
    Site::check(&options)?;
    resolve_account(&options, false)?;
    Ok(options)
}

/// The account to switch to, when running as root. A missing default account
/// falls back to `nobody` so a fresh machine runs; a missing explicit one is fatal.
pub fn resolve_account(options: &Options, announce: bool) -> Result<Option<Account>, OptionsError> {
    if !sys::is_root() {
        return Ok(None);
    }
    let name = &options.user.name;
    match sys::find_account(name) {
        Ok(Some(account)) => Ok(Some(account)),
        Ok(None) if !options.user.explicit => {
            match sys::find_account(crate::options::FALLBACK_USER) {
                Ok(Some(account)) => {
                    if announce {
                        log::warn!(
                            "account '{name}' does not exist; running as '{}' (create it, or set options.user)",
                            account.name
                        );
                    }
                    Ok(Some(account))
                }
                _ => Err(OptionsError::option(
                    "user",
                    format!("neither '{name}' nor 'nobody' exists"),
                )),
            }
        }
        Ok(None) => Err(OptionsError::option(
            "user",
            format!("account '{name}' does not exist"),
        )),
        Err(e) => Err(OptionsError::option(
            "user",
            format!("cannot look up '{name}': {e}"),
        )),
    }
}

/// Starts the server and supervises it until it is told to stop. Returns the exit status.
pub fn run(options: Options, options_path: Option<PathBuf>, overrides: Overrides) -> i32 {
    signals::ignore_sigpipe();
    signals::reset_handled();
    if let Err(e) = signals::block(&signals::handled_set()) {
        log::error!("cannot block signals: {e}");
        return 1;
    }
    match sys::raise_open_files_limit() {
        Ok(limit) if limit < options.clients / options.workers as u64 + 64 => log::warn!(
            "the open files limit ({limit}) is below what 'clients' may need per worker; raise it (ulimit -n) or lower 'clients'"
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open files limit: {e}"),
    }
    let account = match resolve_account(&options, true) {
        Ok(account) => account,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    let requested = match options.listen_addresses() {
        Ok(address) => options.plain_http.then_some(address),
        Err(e) => {
            log::error!("option 'bind' {e}");
            return 1;
        }
    };
    let mut ports = Vec::new();
    for (requested, option) in [
        (requested, "options.port"),
        (options.tls_address(), "options.tls.port"),
    ] {
        let Some(requested) = requested else {
            ports.push(None);
            continue;
        };
        match Port::bind(requested, options.workers) {
            Ok(port) => ports.push(Some(port)),
            Err(e) => {
                log::error!(
                    "cannot listen on {requested}: {e} (is another server using the port? see {option})"
                );
                return 1;
            }
        }
    }
    let tls_port = ports.pop().flatten();
    let plain_port = ports.pop().flatten();
    let (admin, admin_address) = match options.admin_address() {
        Some(address) => match when_free(address, || sys::socket::listen(address, false))
            .and_then(|l| Ok((l.local_addr()?, l)))
        {
            Ok((bound, listener)) => (Some(listener), Some(bound)),
            Err(e) => {
                log::error!("cannot listen on the admin address {address}: {e} (see options.root)");
                return 1;
            }
        },
        None => (None, None),
    };
    let region: &'static StatsRegion = match StatsRegion::new() {
        Ok(region) => Box::leak(Box::new(region)),
        Err(e) => {
            log::error!("cannot create the shared statistics region: {e}");
            return 1;
        }
    };
    let limits: &'static LimitsRegion = match LimitsRegion::new() {
        Ok(limits) => Box::leak(Box::new(limits)),
        Err(e) => {
            log::error!("cannot create the shared region of options.limits: {e}");
            return 1;
        }
    };
    let hints: &'static HintTable = match HintTable::new() {
        Ok(table) => Box::leak(Box::new(table)),
        Err(e) => {
            log::error!("cannot create the shared table of player hints: {e}");
            return 1;
        }
    };
    let mut site = match Site::compile(&options, region, hints) {
        Ok(site) => site,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    if let Some(port) = &tls_port {
        site.https_port = port.address.port();
    }
    let globals = region.globals();
    globals.started.store(sys::unix_now(), Ordering::Relaxed);
    globals
        .workers
        .store(options.workers as u64, Ordering::Relaxed);
    globals
        .clients_limit
        .store(options.clients, Ordering::Relaxed);
    let mut master = Master {
        options,
        options_path,
        overrides,
        plain: plain_port,
        tls: tls_port,
        admin,
        admin_address,
        site: Some(site),
        account,
        region,
        limits,
        hints,
        children: Vec::new(),
        generation: 1,
        free_slots: (0..stats::SLOT_COUNT).rev().collect(),
        pending: Vec::new(),
        quick_deaths: Vec::new(),
        draining_until: None,
    };
    master.announce();
    master.start_generation();
    master.supervise()
}

/// How long to wait before restarting a child that died `quick_deaths` times
/// in a row soon after starting: at once for a healthy one, then 100 ms
/// doubling up to `RESTART_BACKOFF_MAX`, so a crash loop cannot spin the CPU.
fn restart_delay(quick_deaths: u32) -> Duration {
    if quick_deaths == 0 {
        return Duration::ZERO;
    }
    let doublings = quick_deaths.min(16) - 1;
    (Duration::from_millis(100) * 2u32.pow(doublings)).min(RESTART_BACKOFF_MAX)
}

impl Master {
    fn announce(&self) {
        let source = self
            .options_path
            .as_ref()
            .map_or("built-in defaults".to_string(), |p| p.display().to_string());
        let admin = self
            .admin_address
            .map_or("disabled".to_string(), |a| format!("http://{a}/monitor"));
        let addresses: Vec<String> = [("http", &self.plain), ("https", &self.tls)]
            .iter()
            .filter_map(|(scheme, port)| {
                port.as_ref()
                    .map(|port| format!("{scheme}://{}", port.address))
            })
            .collect();
        log::info!(
            "Loomiere {} listening on {} with {} workers (options: {source}; admin: {admin})",
            env!("CARGO_PKG_VERSION"),
            addresses.join(" and "),
            self.options.workers
        );
        for host in &self.options.hosts {
            let folders: Vec<String> = host
                .folders
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            log::info!("host '{}' serves {}", host.pattern, folders.join(", "));
        }
        if let Some(tls) = &self.options.tls {
            let kernel = match tls.kernel {
                KernelTls::Off => "off (options.tls.kernel): rustls encrypts in user space",
                KernelTls::Auto if sys::ktls::available() => {
                    "on: after each handshake the kernel encrypts, bodies go by sendfile"
                }
                KernelTls::Auto => {
                    "unavailable (/proc/sys/net/ipv4/tcp_available_ulp does not list tls; modprobe tls): rustls encrypts in user space"
                }
            };
            log::info!("kernel TLS {kernel}");
        }
    }

    /// Forks the workers and the monitor of the current generation.
    fn start_generation(&mut self) {
        for socket in 0..self.options.workers {
            self.spawn(Role::Worker { socket });
        }
        if self.admin.is_some() {
            self.spawn(Role::Monitor);
        }
    }

    fn spawn(&mut self, role: Role) {
        let stats_slot = match role {
            Role::Worker { .. } => match self.free_slots.pop() {
                Some(slot) => {
                    self.region.mark_used(slot);
                    Some(slot)
                }
                None => {
                    log::error!(
                        "no free statistics slot for a new worker; too many workers draining"
                    );
                    return;
                }
            },
            Role::Monitor => None,
        };
        // The new child's heartbeat starts blank, whoever had it before.
        match stats_slot {
            Some(slot) => self.region.slot(slot).heartbeat.reset(),
            None => self.region.globals().monitor.reset(),
        }
        let master = std::process::id() as libc::pid_t;
        let started_micros = sys::monotonic_micros();
        match sys::fork() {
            Ok(Forked::Child) => {
                let code = self.become_child(role, stats_slot, master);
                std::process::exit(code);
            }
            Ok(Forked::Parent(pid)) => {
                if let Some(slot) = stats_slot {
                    self.region
                        .slot(slot)
                        .pid
                        .store(pid as u32, Ordering::Relaxed);
                }
                self.children.push(Child {
                    pid,
                    role,
                    generation: self.generation,
                    stats_slot,
                    started: Instant::now(),
                    started_micros,
                    stalled: false,
                });
            }
            Err(e) => {
                log::error!("cannot fork a {role}: {e}; retrying");
                if let Some(slot) = stats_slot {
                    self.free_slots.push(slot);
                }
                self.pending.push(PendingRestart {
                    role,
                    at: Instant::now() + Duration::from_secs(1),
                });
            }
        }
    }

    /// Runs in the new child: keeps only its own sockets, drops privileges, serves.
    fn become_child(&mut self, role: Role, stats_slot: Option<usize>, master: libc::pid_t) -> i32 {
        let plain = self.plain.take();
        let tls = self.tls.take();
        let admin = self.admin.take();
        if let Some(account) = &self.account
            && let Err(e) = sys::switch_to(account)
        {
            log::error!("cannot switch to account '{}': {e}", account.name);
            return 1;
        }
        // After the switch of account, which would clear it: the master's
        // death stops the child as SIGTERM does (signals stay blocked and
        // arrive through the child's signalfd).
        if let Err(e) = sys::die_with_parent(libc::SIGTERM, master) {
            log::warn!("cannot tie the child's life to the master's: {e}");
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match role {
            Role::Worker { socket } => {
                let take =
                    |port: Option<Port>| port.and_then(|p| p.sockets.into_iter().nth(socket));
                let listeners = worker::Listeners {
                    plain: take(plain),
                    tls: take(tls),
                };
                if listeners.plain.is_none() && listeners.tls.is_none() {
                    return 1;
                }
                drop(admin);
                let Some(site) = self.site.take() else {
                    return 1;
                };
                let index = stats_slot.unwrap_or(0);
                let shared = worker::Shared {
                    slot_index: index,
                    slot: self.region.slot(index),
                    globals: self.region.globals(),
                    limits: self.limits,
                    master,
                };
                match worker::run(listeners, site, shared) {
                    Ok(code) => code,
                    Err(e) => {
                        log::error!("worker {} failed: {e}", std::process::id());
                        1
                    }
                }
            }
            Role::Monitor => {
                drop((plain, tls));
                let Some(admin) = admin else { return 1 };
                crate::monitor::serve(admin, self.region, &self.options)
            }
        }));
        result.unwrap_or(70)
    }

    fn supervise(&mut self) -> i32 {
        let set = signals::handled_set();
        loop {
            let now = Instant::now();
            let mut wait = MASTER_TICK;
            if let Some(next) = self.pending.iter().map(|p| p.at).min() {
                wait = wait.min(next.saturating_duration_since(now));
            }
            match signals::wait(&set, wait) {
                Ok(Some(libc::SIGHUP)) => self.reload(),
                Ok(Some(libc::SIGTERM)) | Ok(Some(libc::SIGINT)) => self.start_draining(),
                Ok(Some(libc::SIGQUIT)) => {
                    log::info!("SIGQUIT: stopping at once");
                    self.kill_children();
                    return 0;
                }
                Ok(_) => {}
                Err(e) => log::warn!("waiting for signals: {e}"),
            }
            self.reap();
            self.watch_for_stalls();
            if let Some(tls) = &self.options.tls {
                TicketKeys::rotate_when_due(tls.session_timeout);
            }
            if let Some(until) = self.draining_until {
                if self.children.is_empty() {
                    log::info!("all workers finished; exiting");
                    return 0;
                }
                if Instant::now() >= until {
                    log::warn!(
                        "drain time-out reached; stopping {} children",
                        self.children.len()
                    );
                    self.kill_children();
                    return 0;
                }
                continue;
            }
            self.run_pending_restarts();
        }
    }

    /// Kills every child whose loop has stopped turning (see [`watchdog`]);
    /// `reap` then starts another in its place.
    fn watch_for_stalls(&mut self) {
        let timeout = Duration::from_secs_f64(self.options.stall_timeout);
        let now = sys::monotonic_micros();
        for child in &mut self.children {
            let heartbeat = match (child.role, child.stats_slot) {
                (_, Some(slot)) => &self.region.slot(slot).heartbeat,
                // Monitors share one beat; a retired one exits at once anyway.
                (Role::Monitor, None) if child.generation == self.generation => {
                    &self.region.globals().monitor
                }
                _ => continue,
            };
            if child.stalled {
                continue;
            }
            let Some(stall) = watchdog::check(heartbeat, child.started_micros, now, timeout) else {
                continue;
            };
            child.stalled = true;
            signals::send(child.pid, libc::SIGKILL);
            self.region
                .globals()
                .worker_stalls
                .fetch_add(1, Ordering::Relaxed);
            log::error!(
                "{} {} is stuck: its loop has not turned for {:.1}s (options.stall_timeout = {}), {}; killed it with SIGKILL, another takes its place",
                child.role,
                child.pid,
                stall.stuck_for.as_secs_f64(),
                self.options.stall_timeout,
                stall.describe()
            );
        }
    }

    /// SIGKILLs every child and waits for them, so that their sockets are
    /// closed when the master exits (a restart right after can bind again).
    fn kill_children(&mut self) {
        for child in &self.children {
            signals::send(child.pid, libc::SIGKILL);
        }
        for child in self.children.drain(..) {
            signals::wait_for(child.pid);
        }
    }

    fn reap(&mut self) {
        while let Some((pid, exit)) = signals::reap_child() {
            let Some(position) = self.children.iter().position(|c| c.pid == pid) else {
                continue;
            };
            let child = self.children.remove(position);
            if let Some(slot) = child.stats_slot {
                let stats = self.region.slot(slot);
                // Connections of a dead worker no longer count against `clients`.
                let orphaned = stats.connections_active.swap(0, Ordering::AcqRel);
                // Its streams ended with it.
                stats.streams_active.store(0, Ordering::Relaxed);
                stats.streams_throttled.store(0, Ordering::Relaxed);
                stats.hinted_streams.store(0, Ordering::Relaxed);
                stats.hinted_paused.store(0, Ordering::Relaxed);
                stats.hint_held_bytes.store(0, Ordering::Relaxed);
                self.region
                    .globals()
                    .clients_active
                    .fetch_sub(orphaned as i64, Ordering::AcqRel);
                stats.pid.store(0, Ordering::Relaxed);
                // Nor against anyone's options.limits.
                self.limits.clear_slot(slot);
                self.free_slots.push(slot);
            }
            let how = match exit {
                ChildExit::Exited(code) => format!("exited with status {code}"),
                ChildExit::Signalled(signal) => format!("was killed by {}", signals::name(signal)),
            };
            if self.draining_until.is_some() {
                log::info!("{} {pid} {how} (stopping)", child.role);
                continue;
            }
            if child.generation != self.generation {
                log::info!(
                    "{} {pid} of the previous configuration {how} after draining",
                    child.role
                );
                continue;
            }
            let lived = child.started.elapsed();
            let deaths = self.count_quick_death(child.role, lived < HEALTHY_LIFETIME);
            let delay = restart_delay(deaths);
            log::warn!(
                "{} {pid} {how} after {:.1}s; starting a new one in {:.1}s",
                child.role,
                lived.as_secs_f64(),
                delay.as_secs_f64()
            );
            self.region
                .globals()
                .worker_restarts
                .fetch_add(1, Ordering::Relaxed);
            self.pending.push(PendingRestart {
                role: child.role,
                at: Instant::now() + delay,
            });
        }
    }

    /// Records a death; returns how many quick deaths in a row this role has had.
    fn count_quick_death(&mut self, role: Role, quick: bool) -> u32 {
        let entry = match self.quick_deaths.iter_mut().find(|(r, _)| *r == role) {
            Some(entry) => entry,
            None => {
                self.quick_deaths.push((role, 0));
                self.quick_deaths.last_mut().expect("just pushed")
            }
        };
        entry.1 = if quick { entry.1 + 1 } else { 0 };
        entry.1
    }

    fn run_pending_restarts(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.at <= now);
        self.pending = later;
        for restart in due {
            let still_wanted = match restart.role {
                Role::Worker { socket } => socket < self.options.workers,
                Role::Monitor => self.admin.is_some(),
            };
            if still_wanted {
                self.spawn(restart.role);
            }
        }
    }

    /// SIGTERM/SIGINT: stop accepting, let responses finish, then exit.
    fn start_draining(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        let grace = Duration::from_secs_f64(self.options.drain_timeout);
        log::info!(
            "stopping: no new connections; in-flight responses have {:.0}s to finish",
            grace.as_secs_f64()
        );
        // Workers cut and log what is left at `grace` themselves; the
        // master only kills what has not exited a little after that.
        self.draining_until = Some(Instant::now() + grace + WORKER_EXIT_GRACE);
        self.pending.clear();
        for child in &self.children {
            signals::send(child.pid, libc::SIGTERM);
        }
        // Close our copies so the kernel refuses new connections once the workers close theirs.
        self.plain = None;
        self.tls = None;
        self.admin = None;
    }

    /// SIGHUP: re-reads options.lua; if valid, new workers take over and the old ones drain.
    fn reload(&mut self) {
        log::info!("SIGHUP: reloading the options");
        let options = match load_options(self.options_path.as_deref(), &self.overrides) {
            Ok(options) => options,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        let site = match Site::compile(&options, self.region, self.hints) {
            Ok(site) => site,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        let account = match resolve_account(&options, true) {
            Ok(account) => account,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        // Keep the sockets when the address is unchanged, so no queued connection is lost.
        let requested = match options.listen_addresses() {
            Ok(address) => options.plain_http.then_some(address),
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: option 'bind' {e}");
                return;
            }
        };
        let plain = match reload_port(&mut self.plain, requested, options.workers) {
            Ok(plain) => plain,
            Err(e) => {
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        let tls = match reload_port(&mut self.tls, options.tls_address(), options.workers) {
            Ok(tls) => tls,
            Err(e) => {
                if plain.took_running {
                    self.plain = plain.port;
                }
                log::error!("reload failed, keeping the running configuration: {e}");
                return;
            }
        };
        let mut site = site;
        if let Some(port) = &tls.port {
            site.https_port = port.address.port();
        }
        if options.admin_address() != self.options.admin_address() {
            self.admin = match options.admin_address() {
                Some(address) => match sys::socket::listen(address, false) {
                    Ok(listener) => {
                        self.admin_address = listener.local_addr().ok();
                        Some(listener)
                    }
                    Err(e) => {
                        log::error!(
                            "cannot listen on the admin address {address}: {e}; the admin port is off"
                        );
                        None
                    }
                },
                None => None,
            };
        }
        self.plain = plain.port;
        self.tls = tls.port;
        self.options = options;
        self.site = Some(site);
        self.account = account;
        self.pending.clear();
        self.quick_deaths.clear();
        let old_generation = self.generation;
        self.generation += 1;
        let globals = self.region.globals();
        globals
            .workers
            .store(self.options.workers as u64, Ordering::Relaxed);
        globals
            .clients_limit
            .store(self.options.clients, Ordering::Relaxed);
        globals.reloads.fetch_add(1, Ordering::Relaxed);
        self.start_generation();
        for child in self
            .children
            .iter()
            .filter(|c| c.generation == old_generation)
        {
            // Retired, not stopped: their streams go on to their end.
            signals::send(child.pid, libc::SIGHUP);
        }
        self.announce();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_only_when_children_keep_dying() {
        assert_eq!(restart_delay(0), Duration::ZERO);
        assert_eq!(restart_delay(1), Duration::from_millis(100));
        assert_eq!(restart_delay(2), Duration::from_millis(200));
        assert_eq!(restart_delay(5), Duration::from_millis(1600));
        assert_eq!(restart_delay(8), RESTART_BACKOFF_MAX);
        assert_eq!(restart_delay(u32::MAX), RESTART_BACKOFF_MAX);
    }
}
