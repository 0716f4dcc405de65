//! Lua route functions: `call = function(url, headers, ip, port)` and the
//! original's function-valued `alter`, `route`, `moved`, run in a Lua state
//! of their own (options.lua evaluated again, so closures and upvalues
//! work), in the sandbox of [`crate::lua`]: under an instruction limit, a
//! memory limit and a time limit (half of `stall_timeout`, so the watchdog
//! never takes a route function for a stuck worker). Each worker has its
//! own copy of the state (it is built before the fork), and notes in its
//! heartbeat which function it runs, for the watchdog's log line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use mlua::{Function, MultiValue, Table, Value};

use super::rewrite::Routing;
use crate::http::{Request, Status};
use crate::lua::limits::LimitNames;
use crate::lua::{Sandbox, helpers};
use crate::options::{Options, OptionsError, RouteAction, lua as options_lua};
use crate::stats::heartbeat::Heartbeat;

/// How a route function's limits are named in its errors.
const ROUTE_LIMITS: LimitNames = LimitNames {
    instructions: "options.lua_instructions",
    time: "half of options.stall_timeout",
};

pub struct RouteLua {
    sandbox: Sandbox,
    /// By (host index, route index from 1).
    functions: HashMap<(usize, usize), Function>,
    instructions_per_call: u64,
    time_per_call: Duration,
    /// Where the worker notes which function it runs (set after the fork).
    heartbeat: Option<&'static Heartbeat>,
}

impl RouteLua {
    /// The route functions of `options`, or None when it has none.
    /// `country`, when given, answers `loomiere.country(ip)`.
    pub fn load(
        options: &Options,
        country: Option<impl Fn(IpAddr) -> Option<String> + 'static>,
    ) -> Result<Option<RouteLua>, OptionsError> {
        let uses_functions = options.hosts.iter().any(|host| {
            host.routes
                .iter()
                .any(|route| matches!(route.action, RouteAction::Function { .. }))
        });
        let (true, Some(path)) = (uses_functions, options.source.as_deref()) else {
            return Ok(None);
        };
        let fail = |e: mlua::Error| OptionsError::new(format!("route functions: {e}"));
        let source = std::fs::read(path)
            .map_err(|e| OptionsError::new(format!("cannot read {}: {e}", path.display())))?;
        let sandbox = Sandbox::with_helpers().map_err(fail)?;
        let lua = &sandbox.lua;
        let (_, store) = options_lua::evaluate_in(&sandbox, Path::new(path), &source)?;
        let functions = collect(&store).map_err(fail)?;
        if let Some(country) = country {
            helpers::set_country(&sandbox, country).map_err(fail)?;
        }
        let used = lua.used_memory() as u64;
        sandbox
            .limit_memory(used + options.lua_memory)
            .map_err(fail)?;
        Ok(Some(RouteLua {
            sandbox,
            functions,
            instructions_per_call: options.lua_instructions,
            time_per_call: Duration::from_secs_f64(options.stall_timeout / 2.0),
            heartbeat: None,
        }))
    }

    /// Makes every call note, in `heartbeat`, which function it runs.
    pub fn report_to(&mut self, heartbeat: &'static Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    /// Runs route `route` of host `host` for `request` (target `target`).
    /// A failure is logged with its traceback and answers 500.
    pub fn call(
        &self,
        (host, pattern): (usize, &str),
        (route, key): (usize, &'static str),
        target: &str,
        request: &Request,
        peer: SocketAddr,
    ) -> Routing<'static> {
        if let Some(heartbeat) = self.heartbeat {
            heartbeat.note(&format!(
                "running hosts['{pattern}'].routes[{route}] ({key}) for {target}"
            ));
        }
        self.sandbox
            .limits
            .start(self.instructions_per_call, self.time_per_call, ROUTE_LIMITS);
        let result = self.run(host, route, key, target, request, peer);
        if let Some(heartbeat) = self.heartbeat {
            heartbeat.clear_note();
        }
        match result {
            Ok(routing) => routing,
            Err(e) => {
                // What a failed call allocated must not starve the next one.
                let _ = self.sandbox.lua.gc_collect();
                log::error!("hosts['{pattern}'].routes[{route}] ({key}) failed for {target}: {e}");
                Routing::Error {
                    status: Status::INTERNAL_ERROR,
                    message: "The route function failed; the server log says why.".into(),
                }
            }
        }
    }

    fn run(
        &self,
        host: usize,
        route: usize,
        key: &'static str,
        target: &str,
        request: &Request,
        peer: SocketAddr,
    ) -> mlua::Result<Routing<'static>> {
        let function = self
            .functions
            .get(&(host, route))
            .ok_or_else(|| mlua::Error::RuntimeError("the function is missing".into()))?;
        let headers = self.sandbox.lua.create_table()?;
        for (name, value) in request.header_fields() {
            let joined = match headers.get::<Option<String>>(name.as_str())? {
                Some(earlier) => format!("{earlier}, {value}"),
                None => value,
            };
            headers.set(name, joined)?;
        }
        let same = || Routing::Serve(target.to_string().into());
        if key != "call" {
            // The original's form: f(target, headers) returns the new target, or nil.
            let new: Option<String> = function.call((target, headers))?;
            return Ok(match (key, new) {
                (_, None) => same(),
                ("alter", Some(new)) => Routing::Serve(new.into()),
                (_, Some(location)) => Routing::Redirect {
                    status: if key == "moved" {
                        Status(301)
                    } else {
                        Status(302)
                    },
                    location,
                },
            });
        }
        // An IPv4 client on the dual-stack socket is shown as IPv4.
        let values: MultiValue = function.call((
            target,
            headers,
            peer.ip().to_canonical().to_string(),
            peer.port(),
        ))?;
        let mut values = values.into_iter();
        let status = match values.next() {
            None | Some(Value::Nil) => return Ok(same()),
            Some(Value::Integer(n)) => n as f64,
            Some(Value::Number(n)) => n,
            Some(other) => {
                return Err(mlua::Error::RuntimeError(format!(
                    "returned a {} where a status belongs",
                    other.type_name()
                )));
            }
        };
        let url = match values.next() {
            None | Some(Value::Nil) => None,
            Some(Value::String(text)) => Some(text.to_string_lossy()),
            Some(other) => {
                return Err(mlua::Error::RuntimeError(format!(
                    "returned a {} where a URL belongs",
                    other.type_name()
                )));
            }
        };
        let code = status as u16;
        Ok(match (code, url) {
            _ if status.fract() != 0.0 => {
                return Err(mlua::Error::RuntimeError(format!(
                    "returned status {status}"
                )));
            }
            (200, None) => same(),
            (200, Some(url)) => Routing::Serve(url.into()),
            (300..=399, Some(location)) => Routing::Redirect {
                status: Status(code),
                location,
            },
            (300..=399, None) => {
                return Err(mlua::Error::RuntimeError(format!(
                    "returned {code} without a URL to redirect to"
                )));
            }
            (400..=599, _) => Routing::Error {
                status: Status(code),
                message: String::new(),
            },
            (other, _) => {
                return Err(mlua::Error::RuntimeError(format!(
                    "returned status {other}; route functions return 200, 3xx, 4xx or 5xx"
                )));
            }
        })
    }
}

/// The functions of every host's routes, from the evaluated `options` table.
fn collect(store: &Table) -> mlua::Result<HashMap<(usize, usize), Function>> {
    let mut functions = HashMap::new();
    let hosts: Table = store.get("hosts")?;
    let Some(meta) = hosts.metatable() else {
        return Ok(functions);
    };
    let order: Table = meta.raw_get("__order")?;
    for (host_index, pattern) in order.sequence_values::<String>().enumerate() {
        let host: Table = hosts.raw_get(pattern?)?;
        let Some(routes) = host.get::<Option<Table>>("routes")? else {
            continue;
        };
        for (route_index, route) in routes.sequence_values::<Table>().enumerate() {
            let route = route?;
            for key in ["call", "alter", "route", "moved"] {
                if let Value::Function(function) = route.get::<Value>(key)? {
                    functions.insert((host_index, route_index + 1), function);
                }
            }
        }
    }
    Ok(functions)
}
