//! A host's table of options.lua read back into plain values: its folders,
//! pacing overrides, routes (one action each), access rules and HTTPS
//! settings, in the order the hosts were defined.

use std::path::PathBuf;

use mlua::{Table, Value};

use super::read::{ReadError, size};
use super::{
    AccessOptions, HostOptions, Options, OptionsError, PacingOverrides, RouteAction, RouteOptions,
    access, tls,
};

/// A host's overrides of the pacing options.
fn read_pacing(host: &Table, pattern: &str) -> Result<PacingOverrides, ReadError> {
    let name = |option: &str| format!("hosts['{pattern}'].{option}");
    let sized = |option: &str| -> Result<Option<u64>, ReadError> {
        match host.get::<Value>(option)? {
            Value::Nil => Ok(None),
            value => size(value, &name(option)).map(Some),
        }
    };
    Ok(PacingOverrides {
        throttle: host.get("throttle")?,
        period: host.get("period")?,
        throttle_from: sized("throttle_from")?,
        rate: sized("rate")?,
        rate_after: sized("rate_after")?,
        min_slice: sized("min_slice")?,
        send_timeout: host.get("send_timeout")?,
    })
}

/// A host's `routes`: an array of `{ match = 'pcre2', <one action> }`.
fn read_routes(host: &Table, pattern: &str) -> Result<Vec<RouteOptions>, ReadError> {
    let Some(routes) = host.get::<Option<Table>>("routes")? else {
        return Ok(Vec::new());
    };
    let count = routes.raw_len();
    if routes.clone().pairs::<Value, Value>().count() != count {
        return Err(OptionsError::option(
            &format!("hosts['{pattern}'].routes"),
            "must be an array: { { match = '...', rewrite = '...' }, ... }",
        )
        .into());
    }
    let mut result = Vec::with_capacity(count);
    for index in 1..=count {
        let name = format!("hosts['{pattern}'].routes[{index}]");
        let Value::Table(route) = routes.raw_get::<Value>(index)? else {
            return Err(OptionsError::option(
                &name,
                "must be a table like { match = '^/old/(.*)$', rewrite = '/new/$1' }",
            )
            .into());
        };
        result.push(read_route(&route, &name)?);
    }
    Ok(result)
}

pub(super) const ROUTE_ACTIONS: [&str; 7] = [
    "rewrite", "redirect", "error", "call", "alter", "route", "moved",
];

fn read_route(route: &Table, name: &str) -> Result<RouteOptions, ReadError> {
    let invalid = |key: &str, message: String| -> ReadError {
        OptionsError::option(&format!("{name}.{key}"), message).into()
    };
    for pair in route.clone().pairs::<Value, Value>() {
        let (key, _) = pair?;
        let known = match &key {
            Value::String(k) => {
                let k = k.to_string_lossy();
                k == "match"
                    || k == "status"
                    || k == "message"
                    || ROUTE_ACTIONS.contains(&k.as_str())
            }
            _ => false,
        };
        if !known {
            return Err(OptionsError::option(name, format!("has an unknown key {key:?}; a route has match, one of {}, and status or message", ROUTE_ACTIONS.join(", "))).into());
        }
    }
    let pattern: String = match route.get::<Value>("match")? {
        Value::String(text) => text.to_string_lossy(),
        Value::Nil => {
            return Err(invalid(
                "match",
                "is missing: every route needs a PCRE2 pattern".into(),
            ));
        }
        other => {
            return Err(invalid(
                "match",
                format!("must be a string, not a {}", other.type_name()),
            ));
        }
    };
    let mut actions = Vec::new();
    for key in ROUTE_ACTIONS {
        let value = route.get::<Value>(key)?;
        if !value.is_nil() {
            actions.push((key, value));
        }
    }
    let [(key, value)] = <[_; 1]>::try_from(actions).map_err(|actions: Vec<(&str, Value)>| {
        let names: Vec<&str> = actions.iter().map(|(k, _)| *k).collect();
        OptionsError::option(
            name,
            if names.is_empty() {
                format!("has no action; give one of {}", ROUTE_ACTIONS.join(", "))
            } else {
                format!(
                    "has several actions ({}); give exactly one",
                    names.join(", ")
                )
            },
        )
    })?;
    let text = |value: &Value| -> Result<String, ReadError> {
        match value {
            Value::String(text) => Ok(text.to_string_lossy()),
            Value::Function(_) => Ok(String::new()),
            other => Err(invalid(
                key,
                format!("must be a string, not a {}", other.type_name()),
            )),
        }
    };
    let status: Option<f64> = match route.get::<Value>("status")? {
        Value::Nil => None,
        Value::Integer(n) => Some(n as f64),
        Value::Number(n) => Some(n),
        other => {
            return Err(invalid(
                "status",
                format!("must be a number, not a {}", other.type_name()),
            ));
        }
    };
    let message: Option<String> = match route.get::<Value>("message")? {
        Value::Nil => None,
        Value::String(text) => Some(text.to_string_lossy()),
        other => {
            return Err(invalid(
                "message",
                format!("must be a string, not a {}", other.type_name()),
            ));
        }
    };
    if status.is_some() && key != "redirect" {
        return Err(invalid(
            "status",
            format!("only goes with redirect, not with {key}"),
        ));
    }
    if message.is_some() && key != "error" {
        return Err(invalid(
            "message",
            format!("only goes with error, not with {key}"),
        ));
    }
    let action = match (key, &value) {
        ("call" | "alter" | "route" | "moved", Value::Function(_)) => {
            let key = ROUTE_ACTIONS
                .iter()
                .find(|k| **k == key)
                .copied()
                .unwrap_or("call");
            RouteAction::Function { key }
        }
        ("call", other) => {
            return Err(invalid(
                "call",
                format!("must be a function, not a {}", other.type_name()),
            ));
        }
        _ => match key {
            "rewrite" => RouteAction::Rewrite(text(&value)?),
            "alter" => RouteAction::Alter(text(&value)?),
            "redirect" => {
                let status = status.unwrap_or(302.0);
                if ![301.0, 302.0, 303.0, 307.0, 308.0].contains(&status) {
                    return Err(invalid(
                        "status",
                        format!("must be 301, 302, 303, 307 or 308, not {status}"),
                    ));
                }
                RouteAction::Redirect {
                    template: text(&value)?,
                    status: status as u16,
                    key: "redirect",
                }
            }
            "route" => RouteAction::Redirect {
                template: text(&value)?,
                status: 302,
                key: "route",
            },
            "moved" => RouteAction::Redirect {
                template: text(&value)?,
                status: 301,
                key: "moved",
            },
            "error" => {
                let status = match value {
                    Value::Integer(n) => n as f64,
                    Value::Number(n) => n,
                    other => {
                        return Err(invalid(
                            "error",
                            format!(
                                "must be a status number from 400 to 599, not a {}",
                                other.type_name()
                            ),
                        ));
                    }
                };
                if status.fract() != 0.0 || !(400.0..=599.0).contains(&status) {
                    return Err(invalid(
                        "error",
                        format!("must be a status from 400 to 599, not {status}"),
                    ));
                }
                RouteAction::Error {
                    status: status as u16,
                    message: message.unwrap_or_default(),
                }
            }
            _ => return Err(invalid(key, "is not a route action".into())),
        },
    };
    Ok(RouteOptions { pattern, action })
}

pub(super) fn read_hosts(store: &Table) -> Result<Vec<HostOptions>, ReadError> {
    let hosts: Table = store.get("hosts")?;
    let order: Table = hosts
        .metatable()
        .ok_or_else(|| OptionsError::option("hosts", "lost its order table"))?
        .raw_get("__order")?;
    let mut result = Vec::new();
    for pattern in order.sequence_values::<String>() {
        let pattern = pattern?;
        let host: Table = hosts.raw_get(pattern.as_str())?;
        let folders: Vec<PathBuf> = match host.get::<Option<String>>("folder")? {
            Some(folder) => vec![PathBuf::from(folder)],
            None => host
                .get::<Vec<String>>("folders")?
                .into_iter()
                .map(PathBuf::from)
                .collect(),
        };
        let pacing = read_pacing(&host, &pattern)?;
        let routes = read_routes(&host, &pattern)?;
        let access: AccessOptions = access::read_host(&host, &pattern)?;
        let hints = host.get::<Option<bool>>("hints")?.unwrap_or(false);
        let segment_seconds = host.get::<Option<f64>>("segment_seconds")?;
        let subtitle_default = host.get::<Option<String>>("subtitle_default")?;
        let subtitle_names = match host.get::<Option<Table>>("subtitle_names")? {
            Some(names) => {
                let mut pairs = names
                    .pairs::<String, String>()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        OptionsError::option(
                            "subtitle_names",
                            "maps language tags to names: { ['pt-BR'] = 'Português' }",
                        )
                    })?;
                pairs.sort();
                pairs
            }
            None => Vec::new(),
        };
        let tls = tls::read_host(&host, &pattern)?;
        result.push(HostOptions {
            pattern,
            folders,
            pacing,
            routes,
            access,
            hints,
            segment_seconds,
            subtitle_default,
            subtitle_names,
            tls,
        });
    }
    if result.is_empty() {
        result = Options::defaults().hosts;
    }
    Ok(result)
}
