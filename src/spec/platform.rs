//! Platforms: the `platform` object of descriptors, `--platform os/arch[/variant]`, and matching.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A platform as it appears in an index entry or a config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(input: &str) -> Result<Platform> {
        let invalid = || Error::InvalidPlatform {
            input: input.to_string(),
        };
        let parts: Vec<&str> = input.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(invalid());
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
            ..Platform::default()
        })
    }

    /// The `(os, architecture, variant)` triple with the usual equivalences applied:
    /// `arm64` ≡ `arm64/v8`, `amd64` ≡ `amd64/v1`, `arm` ≡ `arm/v7`, and the aliases
    /// `aarch64` → `arm64`, `x86_64`/`x86-64` → `amd64`.
    pub fn normalized(&self) -> (String, String, Option<String>) {
        let os = self.os.to_ascii_lowercase();
        let arch = match self.architecture.to_ascii_lowercase().as_str() {
            "aarch64" => "arm64".to_string(),
            "x86_64" | "x86-64" => "amd64".to_string(),
            "armhf" => "arm".to_string(),
            other => other.to_string(),
        };
        let variant = self.variant.as_ref().map(|v| v.to_ascii_lowercase());
        let variant = match (arch.as_str(), variant.as_deref()) {
            ("arm64", None | Some("8") | Some("v8")) => Some("v8".to_string()),
            ("amd64", None | Some("v1")) => Some("v1".to_string()),
            ("arm", None | Some("7") | Some("v7")) => Some("v7".to_string()),
            ("arm", Some(v)) if !v.starts_with('v') => Some(format!("v{v}")),
            _ => variant,
        };
        (os, arch, variant)
    }

    /// True when `self` (an entry's platform) satisfies `wanted` (what the user asked for).
    /// A request without a variant accepts any variant of an architecture with no default one.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        let (os, arch, variant) = self.normalized();
        let (w_os, w_arch, w_variant) = wanted.normalized();
        os == w_os
            && arch == w_arch
            && (w_variant.is_none() || variant == w_variant)
            && wanted
                .os_version
                .as_ref()
                .is_none_or(|v| self.os_version.as_ref() == Some(v))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses() {
        assert_eq!(p("linux/arm64/v8").variant.as_deref(), Some("v8"));
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalizes_default_variants() {
        assert!(p("linux/arm64").satisfies(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").satisfies(&p("linux/arm64")));
        assert!(p("linux/amd64").satisfies(&p("linux/amd64/v1")));
        assert!(p("linux/arm/v7").satisfies(&p("linux/arm")));
        assert!(p("linux/arm").satisfies(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").satisfies(&p("linux/arm")));
        assert!(!p("linux/amd64/v3").satisfies(&p("linux/amd64")));
        assert!(p("linux/x86_64").satisfies(&p("linux/amd64")));
        assert!(p("linux/riscv64/rva22").satisfies(&p("linux/riscv64")));
        assert!(!p("windows/amd64").satisfies(&p("linux/amd64")));
    }
}
