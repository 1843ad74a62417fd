//! A root of trust across the gap: `SHA256SUMS` signed with an SSH key, in OpenSSH's SSHSIG
//! format (namespace `ocikit-bundle`), so the far side can check it with OpenSSH alone:
//! `ssh-keygen -Y verify -f allowed_signers -I ID -n ocikit-bundle -s SHA256SUMS.sig <
//! SHA256SUMS`. Keys are ed25519 (what `ssh-keygen -t ed25519` makes); the message is hashed
//! with sha512, as `ssh-keygen -Y sign` does.

use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::error::{Error, Result};

/// The signature's file name at the bundle's top.
pub const SIGNATURE: &str = "SHA256SUMS.sig";

/// The SSHSIG namespace of a bundle signature.
pub const NAMESPACE: &str = "ocikit-bundle";

/// An ed25519 private key in OpenSSH format, read and ready to sign.
pub struct SigningKey {
    key: PrivateKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl SigningKey {
    /// Reads an OpenSSH private key (`what` names it in messages). An encrypted key, or one
    /// that is not ed25519, is refused.
    pub fn parse(text: &[u8], what: &str) -> Result<SigningKey> {
        let bad = |reason: String| Error::InvalidInput {
            what: what.to_string(),
            reason,
        };
        let key = PrivateKey::from_openssh(text)
            .map_err(|e| bad(format!("is not an OpenSSH private key: {e}")))?;
        if key.is_encrypted() {
            return Err(bad(
                "is encrypted with a passphrase, which ocikit cannot ask for; use a key without one (or sign with ssh-keygen -Y sign)".into(),
            ));
        }
        if key.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(bad(format!(
                "is an {} key; bundles are signed with ed25519 keys",
                key.algorithm()
            )));
        }
        Ok(SigningKey { key })
    }

    /// The public key's SHA256 fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The SSHSIG signature (armored) of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let failed = |e: ssh_key::Error| Error::InvalidInput {
            what: "signing SHA256SUMS".into(),
            reason: format!("failed: {e}"),
        };
        let signature = self
            .key
            .sign(NAMESPACE, HashAlg::Sha512, message)
            .map_err(failed)?;
        let mut pem = signature.to_pem(LineEnding::LF).map_err(failed)?;
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        Ok(pem.into_bytes())
    }
}

/// Who signed, as the allowed signers file names them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    /// The principals of the matching line (`alice@example.com`, comma-separated there).
    pub principals: Vec<String>,
    /// The key's SHA256 fingerprint.
    pub fingerprint: String,
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The signature file cannot be read as SSHSIG.
    Malformed(String),
    /// No line of the allowed signers file holds the signing key for this namespace.
    UnknownKey(String),
    /// The key is allowed, but the signature does not match the message.
    Invalid(String),
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Malformed(m) | Rejected::UnknownKey(m) | Rejected::Invalid(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Checks the SSHSIG `signature` of `message` against `allowed_signers` (the file
/// `ssh-keygen -Y verify -f` reads: `principals [options] keytype base64 [comment]` per line;
/// a `namespaces="…"` option restricts a key to those namespaces; `cert-authority` lines are
/// not supported and skipped). `Err` is a file that cannot be read at all.
pub fn verify(
    allowed_signers: &str,
    signature: &[u8],
    message: &[u8],
) -> Result<std::result::Result<Signer, Rejected>> {
    let signature = match SshSig::from_pem(signature) {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(Rejected::Malformed(format!(
                "SHA256SUMS.sig is not an SSH signature: {e}"
            ))))
        }
    };
    if signature.namespace() != NAMESPACE {
        return Ok(Err(Rejected::Invalid(format!(
            "SHA256SUMS.sig is for the namespace {:?}, not {NAMESPACE:?}",
            signature.namespace()
        ))));
    }
    let signing = PublicKey::from(signature.public_key().clone());
    let fingerprint = signing.fingerprint(HashAlg::Sha256).to_string();
    for line in allowed_signers.lines() {
        let Some(allowed) = parse_line(line) else {
            continue;
        };
        if allowed.key.key_data() != signature.public_key() {
            continue;
        }
        if let Some(namespaces) = &allowed.namespaces {
            if !namespaces.iter().any(|n| n == NAMESPACE || n == "*") {
                continue;
            }
        }
        return Ok(match allowed.key.verify(NAMESPACE, message, &signature) {
            Ok(()) => Ok(Signer {
                principals: allowed.principals,
                fingerprint,
            }),
            Err(e) => Err(Rejected::Invalid(format!(
                "the signature by {fingerprint} does not match SHA256SUMS ({e})"
            ))),
        });
    }
    Ok(Err(Rejected::UnknownKey(format!(
        "SHA256SUMS is signed by {fingerprint}, which the allowed signers file does not list for {NAMESPACE:?}"
    ))))
}

/// One usable line of an allowed signers file.
struct Allowed {
    principals: Vec<String>,
    namespaces: Option<Vec<String>>,
    key: PublicKey,
}

fn parse_line(line: &str) -> Option<Allowed> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let tokens = tokenize(line);
    let principals: Vec<String> = tokens.first()?.split(',').map(str::to_string).collect();
    let key_at = tokens.iter().position(|t| is_key_type(t))?;
    if key_at < 1 {
        return None;
    }
    let mut namespaces = None;
    for option in tokens[1..key_at].iter().flat_map(|t| split_options(t)) {
        let lower = option.to_ascii_lowercase();
        if lower == "cert-authority" {
            return None;
        }
        if let Some(value) = lower.strip_prefix("namespaces=") {
            let value = value.trim_matches('"');
            namespaces = Some(value.split(',').map(str::to_string).collect());
        }
    }
    let key_text = tokens.get(key_at..key_at + 2)?.join(" ");
    let key = PublicKey::from_openssh(&key_text).ok()?;
    Some(Allowed {
        principals,
        namespaces,
        key,
    })
}

fn is_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

/// Splits a line at whitespace outside double quotes (empty pieces dropped).
fn tokenize(line: &str) -> Vec<String> {
    split_outside_quotes(line, char::is_whitespace)
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect()
}

/// Splits an options token at commas outside double quotes.
fn split_options(token: &str) -> Vec<String> {
    split_outside_quotes(token, |c| c == ',')
}

/// Splits `text` at the characters `separator` accepts, except inside double quotes.
fn split_outside_quotes(text: &str, separator: impl Fn(char) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && separator(c) {
            out.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    out.push(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBBt58byaJ30eZ025nckFZgXibwQn+kEOYYNKXkTnXLQQAAAJhEWBkbRFgZ
GwAAAAtzc2gtZWQyNTUxOQAAACBBt58byaJ30eZ025nckFZgXibwQn+kEOYYNKXkTnXLQQ
AAAECCria9SCHIsmhaTD3OJ7vqDWp4bEP6KrgiGtcL7E9qG0G3nxvJonfR5nTbmdyQVmBe
JvBCf6QQ5hg0peROdctBAAAAEHVzZXJAZXhhbXBsZS5jb20BAgMEBQ==
-----END OPENSSH PRIVATE KEY-----
";
    const PUBLIC: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEG3nxvJonfR5nTbmdyQVmBeJvBCf6QQ5hg0peROdctB";

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let key = SigningKey::parse(KEY.as_bytes(), "key").unwrap();
        let signature = key.sign(b"sums\n").unwrap();
        let allowed = format!("alice@example.com namespaces=\"ocikit-bundle\" {PUBLIC}\n");
        let signer = verify(&allowed, &signature, b"sums\n").unwrap().unwrap();
        assert_eq!(signer.principals, ["alice@example.com"]);
        assert!(matches!(
            verify(&allowed, &signature, b"sumz\n").unwrap(),
            Err(Rejected::Invalid(_))
        ));
        let other_namespace = format!("bob namespaces=\"git\" {PUBLIC}\n");
        assert!(matches!(
            verify(&other_namespace, &signature, b"sums\n").unwrap(),
            Err(Rejected::UnknownKey(_))
        ));
        assert!(matches!(
            verify(&allowed, b"garbage", b"sums\n").unwrap(),
            Err(Rejected::Malformed(_))
        ));
    }
}
