//! The image configuration `image build` writes: a base's configuration (kept as JSON, unknown
//! fields and all) or a new one, with the caller's changes, new layers and history applied.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::spec::digest::Digest;
use crate::spec::platform::Platform;

/// How the runtime configuration (`config` of the image configuration) changes. Every value is
/// checked when it is parsed ([`command`], [`ExposedPort::parse`], …), before anything is
/// written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    /// `Entrypoint`; `Some(vec![])` clears it. Setting it drops a `Cmd` inherited from the base
    /// unless `cmd` is given too (as a Dockerfile's `ENTRYPOINT` does).
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`; `Some(vec![])` clears it.
    pub cmd: Option<Vec<String>>,
    /// `KEY=VALUE` pairs: each replaces the base's variable of that name, or is appended.
    pub env: Vec<(String, String)>,
    /// `Labels`, added to (or replacing those of) the base.
    pub labels: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `ExposedPorts`, added to the base's.
    pub expose: Vec<ExposedPort>,
    /// `Volumes`, added to the base's.
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

/// A port as `ExposedPorts` names it: `80/tcp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExposedPort(String);

impl ExposedPort {
    /// `PORT` or `PORT/PROTOCOL` (tcp, udp or sctp; tcp when absent).
    pub fn parse(text: &str) -> Result<ExposedPort> {
        let (port, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
        let valid_port = port.parse::<u16>().is_ok_and(|p| p > 0);
        let protocol = protocol.to_ascii_lowercase();
        if !valid_port || !["tcp", "udp", "sctp"].contains(&protocol.as_str()) {
            return Err(Error::InvalidInput {
                what: format!("the port {text:?}"),
                reason: "is not PORT or PORT/PROTOCOL (a port from 1 to 65535; tcp, udp or sctp)"
                    .into(),
            });
        }
        Ok(ExposedPort(format!("{port}/{protocol}")))
    }
}

/// An entrypoint or command: a JSON array of strings is the exec form as it is (`[]` clears);
/// anything else is the shell form, run by `/bin/sh -c` (as in a Dockerfile).
pub fn command(text: &str) -> Result<Vec<String>> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str::<Vec<String>>(text).map_err(|e| Error::InvalidInput {
            what: format!("the command {text:?}"),
            reason: format!("starts with '[' but is not a JSON array of strings: {e}"),
        });
    }
    if text.trim().is_empty() {
        return Err(Error::InvalidInput {
            what: "an empty command".into(),
            reason: "is neither a JSON array nor a shell command (use [] to clear one)".into(),
        });
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), text.into()])
}

/// A `KEY=VALUE` environment variable (the value may be empty, the key may not, nor contain
/// `=`).
pub fn env_var(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(Error::InvalidInput {
            what: format!("the environment variable {text:?}"),
            reason: "is not KEY=VALUE with a non-empty KEY".into(),
        }),
    }
}

/// A volume: an absolute path.
pub fn volume(text: &str) -> Result<String> {
    if !text.starts_with('/') {
        return Err(Error::InvalidInput {
            what: format!("the volume {text:?}"),
            reason: "is not an absolute path".into(),
        });
    }
    Ok(text.into())
}

/// One new layer, for `rootfs.diff_ids` and `history`.
pub struct NewLayer {
    pub diff_id: Digest,
    /// What made it, for the history's `created_by`.
    pub created_by: String,
}

/// The configuration: `base` (an image configuration as JSON) or an empty one, with `platform`,
/// `changes`, the new layers and their history, and `created` (RFC 3339).
pub fn make(
    base: Option<Map<String, Value>>,
    platform: &Platform,
    changes: &ConfigChanges,
    layers: &[NewLayer],
    created: &str,
) -> Result<Value> {
    let inherited = base.is_some();
    let mut config = base.unwrap_or_default();
    config.insert("created".into(), created.into());
    config.insert("architecture".into(), platform.architecture.clone().into());
    config.insert("os".into(), platform.os.clone().into());
    match &platform.variant {
        Some(variant) => config.insert("variant".into(), variant.clone().into()),
        None => config.remove("variant"),
    };
    let runtime = object_at(&mut config, "config", "config")?;
    apply(runtime, changes, inherited)?;
    if runtime.is_empty() {
        config.remove("config");
    }

    let rootfs = object_at(&mut config, "rootfs", "rootfs")?;
    rootfs.insert("type".into(), "layers".into());
    let diff_ids = array_at(rootfs, "diff_ids", "rootfs.diff_ids")?;
    diff_ids.extend(layers.iter().map(|l| Value::from(l.diff_id.to_string())));

    let history = array_at(&mut config, "history", "history")?;
    history.extend(layers.iter().map(|l| {
        let mut entry = Map::new();
        entry.insert("created".into(), created.into());
        entry.insert("created_by".into(), l.created_by.clone().into());
        Value::Object(entry)
    }));
    Ok(Value::Object(config))
}

/// Applies `changes` to the runtime configuration.
fn apply(runtime: &mut Map<String, Value>, changes: &ConfigChanges, inherited: bool) -> Result<()> {
    let set_list = |runtime: &mut Map<String, Value>, key: &str, list: &[String]| {
        match list.is_empty() {
            true => runtime.remove(key),
            false => runtime.insert(key.into(), list.into()),
        };
    };
    if let Some(entrypoint) = &changes.entrypoint {
        set_list(runtime, "Entrypoint", entrypoint);
        if inherited && changes.cmd.is_none() {
            runtime.remove("Cmd");
        }
    }
    if let Some(cmd) = &changes.cmd {
        set_list(runtime, "Cmd", cmd);
    }
    if !changes.env.is_empty() {
        let env = array_at(runtime, "Env", "config.Env")?;
        for (key, value) in &changes.env {
            let prefix = format!("{key}=");
            let line = Value::from(format!("{key}={value}"));
            match env.iter_mut().find(|v| {
                v.as_str()
                    .is_some_and(|s| s.starts_with(&prefix) || s == key)
            }) {
                Some(existing) => *existing = line,
                None => env.push(line),
            }
        }
    }
    for (key, value) in &changes.labels {
        object_at(runtime, "Labels", "config.Labels")?.insert(key.clone(), value.clone().into());
    }
    for port in &changes.expose {
        object_at(runtime, "ExposedPorts", "config.ExposedPorts")?
            .insert(port.0.clone(), Value::Object(Map::new()));
    }
    for volume in &changes.volumes {
        object_at(runtime, "Volumes", "config.Volumes")?
            .insert(volume.clone(), Value::Object(Map::new()));
    }
    for (key, value) in [
        ("WorkingDir", &changes.workdir),
        ("User", &changes.user),
        ("StopSignal", &changes.stop_signal),
    ] {
        if let Some(value) = value {
            runtime.insert(key.into(), value.clone().into());
        }
    }
    Ok(())
}

/// The object at `key` of `map`, made when absent or null; an error naming `pointer` when it is
/// something else (a base configuration another tool wrote wrongly).
fn object_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    pointer: &str,
) -> Result<&'a mut Map<String, Value>> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| not_shaped(pointer, "an object"))
}

/// The array at `key` of `map`, made when absent or null (see [`object_at`]).
fn array_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    pointer: &str,
) -> Result<&'a mut Vec<Value>> {
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or_else(|| not_shaped(pointer, "an array"))
}

fn not_shaped(pointer: &str, shape: &str) -> Error {
    Error::InvalidInput {
        what: format!("the base image's configuration field {pointer}"),
        reason: format!("is not {shape}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn linux_amd64() -> Platform {
        Platform::parse("linux/amd64").unwrap()
    }

    #[test]
    fn commands_are_exec_or_shell_form() {
        assert_eq!(
            command(r#"["/app","--serve"]"#).unwrap(),
            ["/app", "--serve"]
        );
        assert_eq!(command("[]").unwrap(), Vec::<String>::new());
        assert_eq!(command("echo hi").unwrap(), ["/bin/sh", "-c", "echo hi"]);
        for bad in ["[1, 2]", "[\"unterminated", "  "] {
            assert!(command(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_volumes_and_env_are_checked() {
        assert_eq!(ExposedPort::parse("80").unwrap().0, "80/tcp");
        assert_eq!(ExposedPort::parse("53/UDP").unwrap().0, "53/udp");
        for bad in ["0", "65536", "http", "80/icmp", "80/"] {
            assert!(ExposedPort::parse(bad).is_err(), "{bad}");
        }
        assert!(volume("data").is_err());
        assert_eq!(env_var("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(env_var("EMPTY=").unwrap(), ("EMPTY".into(), "".into()));
        assert!(env_var("=x").is_err());
        assert!(env_var("NOEQUALS").is_err());
    }

    #[test]
    fn a_new_configuration() {
        let changes = ConfigChanges {
            cmd: Some(vec!["/app".into()]),
            env: vec![("PATH".into(), "/bin".into())],
            labels: vec![("a".into(), "1".into())],
            expose: vec![ExposedPort::parse("8080").unwrap()],
            volumes: vec!["/data".into()],
            workdir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            stop_signal: Some("SIGTERM".into()),
            ..ConfigChanges::default()
        };
        let layer = NewLayer {
            diff_id: Digest::sha256_of(b"tar"),
            created_by: "made".into(),
        };
        let config = make(
            None,
            &linux_amd64(),
            &changes,
            &[layer],
            "2024-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            config,
            json!({
                "created": "2024-01-01T00:00:00Z",
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Cmd": ["/app"],
                    "Env": ["PATH=/bin"],
                    "Labels": {"a": "1"},
                    "ExposedPorts": {"8080/tcp": {}},
                    "Volumes": {"/data": {}},
                    "WorkingDir": "/srv",
                    "User": "1000:1000",
                    "StopSignal": "SIGTERM"
                },
                "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(b"tar").to_string()]},
                "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "made"}]
            })
        );
    }

    #[test]
    fn a_base_configuration_is_extended() {
        let base = json!({
            "architecture": "arm64", "os": "linux", "variant": "v8",
            "x-unknown": {"kept": true},
            "config": {"Env": ["PATH=/usr/bin", "HOME=/root"], "Cmd": ["bash"],
                       "Labels": {"base": "yes"}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa"]},
            "history": [{"created_by": "base"}]
        });
        let changes = ConfigChanges {
            entrypoint: Some(vec!["/entry".into()]),
            env: vec![
                ("PATH".into(), "/opt/bin".into()),
                ("NEW".into(), "1".into()),
            ],
            labels: vec![("extra".into(), "x".into())],
            ..ConfigChanges::default()
        };
        let layer = NewLayer {
            diff_id: Digest::sha256_of(b"t"),
            created_by: "new".into(),
        };
        let config = make(
            base.as_object().cloned(),
            &linux_amd64(),
            &changes,
            &[layer],
            "1970-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(config["x-unknown"], json!({"kept": true}));
        assert_eq!(config["architecture"], "amd64");
        assert!(config.get("variant").is_none());
        assert_eq!(
            config["config"]["Env"],
            json!(["PATH=/opt/bin", "HOME=/root", "NEW=1"])
        );
        assert_eq!(config["config"]["Entrypoint"], json!(["/entry"]));
        assert!(
            config["config"].get("Cmd").is_none(),
            "an entrypoint resets the base's Cmd"
        );
        assert_eq!(
            config["config"]["Labels"],
            json!({"base": "yes", "extra": "x"})
        );
        assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
        assert_eq!(config["history"].as_array().unwrap().len(), 2);

        let broken = json!({"config": {"Env": "PATH=/bin"}});
        let changes = ConfigChanges {
            env: vec![("A".into(), "b".into())],
            ..ConfigChanges::default()
        };
        let err = make(
            broken.as_object().cloned(),
            &linux_amd64(),
            &changes,
            &[],
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("config.Env"), "{err}");
    }
}
