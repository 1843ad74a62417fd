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

/// Checks the SSHSIG `signature` of `message` against `allowed_signers`, at the time `now`
/// (seconds since the epoch), as `ssh-keygen -Y verify` does (sshsig.c; ssh-keygen(1),
/// ALLOWED SIGNERS): each line is `principals [options] keytype base64 [comment]`; the options
/// are `cert-authority`, `namespaces="pattern-list"` (`*`/`?` wildcards, `!` negation,
/// case-sensitive, as OpenSSH's `match_pattern_list`), `valid-after="time"` and
/// `valid-before="time"` (`YYYYMMDD[HHMM[SS]]`, local time, or UTC with a `Z` or `UTC`
/// suffix), option names in any case. A line with anything else (an unknown or repeated
/// option, a bad time, a key that cannot be read) grants nothing, as OpenSSH skips it; a
/// `cert-authority` line names a CA key, which never matches a plain signature. `Err` is a
/// file that cannot be read at all.
pub fn verify(
    allowed_signers: &str,
    signature: &[u8],
    message: &[u8],
    now: u64,
) -> Result<std::result::Result<Signer, Rejected>> {
    if let Some(algorithm) = signature_algorithm(signature) {
        if algorithm != "ssh-ed25519" {
            return Ok(Err(Rejected::Malformed(format!(
                "SHA256SUMS.sig: unsupported signature algorithm {algorithm} (only ssh-ed25519 is verified)"
            ))));
        }
    }
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
    let key_text = signing
        .to_openssh()
        .ok()
        .and_then(|t| t.split(' ').nth(1).map(str::to_string));
    // Why lines holding the signing key did not accept it.
    let mut refused: Vec<String> = Vec::new();
    for (number, line) in allowed_signers.lines().enumerate() {
        let allowed = match parse_line(line) {
            Line::Blank => continue,
            // Skipped, as OpenSSH skips it; said when it holds the signing key.
            Line::Invalid(why) => {
                if key_text.as_deref().is_some_and(|k| line.contains(k)) {
                    refused.push(format!("line {}: {why}", number + 1));
                }
                continue;
            }
            Line::Allowed(allowed) => allowed,
        };
        if allowed.key.key_data() != signature.public_key() {
            continue;
        }
        let why = if allowed.options.ca {
            Some(
                "it is a cert-authority line (a CA key never matches a plain signature)"
                    .to_string(),
            )
        } else if allowed
            .options
            .namespaces
            .as_deref()
            .is_some_and(|n| match_pattern_list(NAMESPACE, n) != Match::Yes)
        {
            Some(format!("its namespaces do not permit {NAMESPACE:?}"))
        } else if allowed.options.valid_after.is_some_and(|t| now < t) {
            Some("the key is not yet valid (valid-after)".to_string())
        } else if allowed.options.valid_before.is_some_and(|t| now > t) {
            Some("the key has expired (valid-before)".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            refused.push(format!("line {}: {why}", number + 1));
            continue;
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
    let mut message = format!(
        "SHA256SUMS is signed by {fingerprint}, which the allowed signers file does not list for {NAMESPACE:?}"
    );
    if !refused.is_empty() {
        message.push_str(&format!(" ({})", refused.join("; ")));
    }
    Ok(Err(Rejected::UnknownKey(message)))
}

/// The algorithm of the key in an armored SSHSIG signature, read from its blob (`SSHSIG`,
/// version, then the public key, whose first string is its algorithm), if it can be.
fn signature_algorithm(armored: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(armored).ok()?;
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let rest = blob.strip_prefix(b"SSHSIG")?.get(4..)?;
    let key = ssh_string(rest)?;
    let algorithm = ssh_string(key)?;
    Some(String::from_utf8_lossy(algorithm).into_owned())
}

/// The SSH wire-format string (u32 length, bytes) at the start of `bytes`.
fn ssh_string(bytes: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    bytes.get(4..4usize.checked_add(len)?)
}

/// One line of an allowed signers file.
enum Line {
    Blank,
    Allowed(Allowed),
    /// A line that grants nothing, and why.
    Invalid(String),
}

/// One usable line of an allowed signers file.
struct Allowed {
    principals: Vec<String>,
    options: SigOptions,
    key: PublicKey,
}

/// The options of a line (OpenSSH's `sshsigopt`).
#[derive(Debug, Default, PartialEq, Eq)]
struct SigOptions {
    ca: bool,
    namespaces: Option<String>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

fn parse_line(line: &str) -> Line {
    let line = line.trim_start_matches([' ', '\t', '\r', '\n']);
    if line.is_empty() || line.starts_with('#') {
        return Line::Blank;
    }
    let Some((principals, rest)) = next_token(line) else {
        return Line::Invalid("no key".into());
    };
    let principals: Vec<String> = principals.split(',').map(str::to_string).collect();
    // The key straight after the principals, else one options token and then the key.
    let (options, key) = match read_key(rest) {
        Some(key) => (SigOptions::default(), key),
        None => {
            let Some((options, rest)) = next_token(rest) else {
                return Line::Invalid("missing key".into());
            };
            let options = match parse_options(options) {
                Ok(options) => options,
                Err(reason) => return Line::Invalid(reason),
            };
            match read_key(rest) {
                Some(key) => (options, key),
                None => return Line::Invalid("invalid key".into()),
            }
        }
    };
    Line::Allowed(Allowed {
        principals,
        options,
        key,
    })
}

/// The next token of `text` after leading blanks: up to a blank outside double quotes (the
/// quotes kept); and the rest.
fn next_token(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start_matches([' ', '\t']);
    if text.is_empty() {
        return None;
    }
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' | '\r' | '\n' if !quoted => return Some((&text[..i], &text[i..])),
            _ => {}
        }
    }
    Some((text, ""))
}

/// A public key `keytype base64 [comment]` at the start of `text`.
fn read_key(text: &str) -> Option<PublicKey> {
    let (kind, rest) = next_token(text)?;
    let (data, _) = next_token(rest)?;
    PublicKey::from_openssh(&format!("{kind} {data}")).ok()
}

/// Parses an options token as OpenSSH's `sshsigopt_parse`: names in any case, values in
/// double quotes, each option once, nothing unknown.
fn parse_options(mut opts: &str) -> std::result::Result<SigOptions, String> {
    let mut out = SigOptions::default();
    let starts = |opts: &str, name: &str| {
        opts.len() >= name.len()
            && opts.is_char_boundary(name.len())
            && opts[..name.len()].eq_ignore_ascii_case(name)
    };
    while !opts.is_empty() {
        if starts(opts, "cert-authority")
            && matches!(opts.as_bytes().get(14), None | Some(b',' | b' ' | b'\t'))
        {
            out.ca = true;
            opts = &opts[14..];
        } else {
            let Some((name, slot)) = ["namespaces", "valid-after", "valid-before"]
                .into_iter()
                .find(|name| starts(opts, &format!("{name}=")))
                .map(|name| (name, name.len() + 1))
            else {
                return Err("unknown signature option".into());
            };
            let (value, rest) = dequote(&opts[slot..])?;
            opts = rest;
            match name {
                "namespaces" if out.namespaces.is_none() => out.namespaces = Some(value),
                "valid-after" if out.valid_after.is_none() => {
                    out.valid_after = Some(parse_time(&value)?)
                }
                "valid-before" if out.valid_before.is_none() => {
                    out.valid_before = Some(parse_time(&value)?)
                }
                _ => return Err(format!("multiple \"{name}\" clauses")),
            }
        }
        match opts.as_bytes().first() {
            None => break,
            Some(b',') => {
                opts = &opts[1..];
                if opts.is_empty() {
                    return Err("unexpected end-of-options".into());
                }
            }
            Some(_) => return Err("unknown key option".into()),
        }
    }
    if let (Some(after), Some(before)) = (out.valid_after, out.valid_before) {
        if before <= after {
            return Err("\"valid-before\" time is before \"valid-after\"".into());
        }
    }
    Ok(out)
}

/// A double-quoted value (`\"` for a quote inside), and what follows it.
fn dequote(text: &str) -> std::result::Result<(String, &str), String> {
    let Some(body) = text.strip_prefix('"') else {
        return Err("missing start quote".into());
    };
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '\\' if body[i + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            c => value.push(c),
        }
    }
    Err("missing end quote".into())
}

/// `YYYYMMDD[HHMM[SS]]` as seconds since the epoch: UTC with a `Z` or `UTC` suffix, else local
/// time (as OpenSSH's `parse_absolute_time`). Zero is refused, as OpenSSH refuses it.
fn parse_time(text: &str) -> std::result::Result<u64, String> {
    let invalid = || format!("invalid time {text:?}");
    let (digits, utc) = if let Some(d) = text.strip_suffix(['Z', 'z']) {
        (d, true)
    } else if text.len() > 3 && text[text.len() - 3..].eq_ignore_ascii_case("UTC") {
        (&text[..text.len() - 3], true)
    } else {
        (text, false)
    };
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let field = |at: usize, len: usize| -> i64 {
        digits
            .get(at..at + len)
            .and_then(|d| d.parse().ok())
            .unwrap_or(0)
    };
    let (year, month, day) = (field(0, 4), field(4, 2), field(6, 2));
    let (hour, minute, second) = (field(8, 2), field(10, 2), field(12, 2));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(invalid());
    }
    let seconds = if utc {
        crate::spec::time::days_from_civil(year, month as u32, day as u32) * 86400
            + hour * 3600
            + minute * 60
            + second
    } else {
        local_time(year, month, day, hour, minute, second).ok_or_else(invalid)?
    };
    u64::try_from(seconds)
        .ok()
        .filter(|&t| t != 0)
        .ok_or_else(invalid)
}

/// Local time as seconds since the epoch (`mktime`, as OpenSSH reads a time without a zone).
fn local_time(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    // SAFETY: `tm` is a plain C struct, zeroed then filled; mktime reads and normalizes it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::try_from(year - 1900).ok()?;
    tm.tm_mon = (month - 1) as i32;
    tm.tm_mday = day as i32;
    tm.tm_hour = hour as i32;
    tm.tm_min = minute as i32;
    tm.tm_sec = second as i32;
    tm.tm_isdst = -1;
    // SAFETY: a valid pointer to the struct above.
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t)
}

/// What OpenSSH's `match_pattern_list` says of `string` against a comma-separated pattern list.
#[derive(Debug, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    Negated,
}

fn match_pattern_list(string: &str, list: &str) -> Match {
    let mut positive = false;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if match_pattern(string.as_bytes(), pattern.as_bytes()) {
            if negated {
                return Match::Negated;
            }
            positive = true;
        }
    }
    if positive {
        Match::Yes
    } else {
        Match::No
    }
}

/// Glob match with `*` (any run) and `?` (one byte), case-sensitive (OpenSSH's
/// `match_pattern`).
fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| match_pattern(&s[i..], rest)),
        Some((b'?', rest)) => !s.is_empty() && match_pattern(&s[1..], rest),
        Some((c, rest)) => s.first() == Some(c) && match_pattern(&s[1..], rest),
    }
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

    /// 2026-01-01T00:00:00Z.
    const NOW: u64 = 1_767_225_600;

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let key = SigningKey::parse(KEY.as_bytes(), "key").unwrap();
        let signature = key.sign(b"sums\n").unwrap();
        let allowed = format!("alice@example.com namespaces=\"ocikit-bundle\" {PUBLIC}\n");
        let signer = verify(&allowed, &signature, b"sums\n", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(signer.principals, ["alice@example.com"]);
        assert!(matches!(
            verify(&allowed, &signature, b"sumz\n", NOW).unwrap(),
            Err(Rejected::Invalid(_))
        ));
        let other_namespace = format!("bob namespaces=\"git\" {PUBLIC}\n");
        assert!(matches!(
            verify(&other_namespace, &signature, b"sums\n", NOW).unwrap(),
            Err(Rejected::UnknownKey(_))
        ));
        assert!(matches!(
            verify(&allowed, b"garbage", b"sums\n", NOW).unwrap(),
            Err(Rejected::Malformed(_))
        ));
    }

    #[test]
    fn patterns_options_and_times_read_as_openssh_reads_them() {
        assert_eq!(match_pattern_list("ocikit-bundle", "ocikit-*"), Match::Yes);
        assert_eq!(
            match_pattern_list("ocikit-bundle", "git,ocikit-bund?e"),
            Match::Yes
        );
        assert_eq!(
            match_pattern_list("ocikit-bundle", "!ocikit-bundle,*"),
            Match::Negated
        );
        assert_eq!(
            match_pattern_list("ocikit-bundle", "OCIKIT-BUNDLE"),
            Match::No
        );
        assert_eq!(parse_time("19700102Z"), Ok(86400));
        assert_eq!(parse_time("197001020001UTC"), Ok(86460));
        assert_eq!(parse_time("20260101000000Z"), Ok(NOW));
        assert!(parse_time("19700101Z").is_err(), "zero is refused");
        assert!(parse_time("2026").is_err());
        assert!(parse_time("20261301Z").is_err());
        let options = parse_options("Cert-Authority,namespaces=\"a\\\"b\"").unwrap();
        assert!(options.ca);
        assert_eq!(options.namespaces.as_deref(), Some("a\"b"));
        for bad in [
            "x",
            "namespaces=\"a\",",
            "namespaces=a",
            "valid-after=\"2\"",
        ] {
            assert!(parse_options(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_line(&format!("a bogus {PUBLIC}")),
            Line::Invalid(_)
        ));
        assert!(matches!(parse_line("  # comment"), Line::Blank));
        // A cert-authority line holding the signing key: refused, and said why.
        let key = SigningKey::parse(KEY.as_bytes(), "key").unwrap();
        let signature = key.sign(b"sums\n").unwrap();
        let ca = format!("alice cert-authority {PUBLIC}\n");
        match verify(&ca, &signature, b"sums\n", NOW).unwrap() {
            Err(Rejected::UnknownKey(m)) => assert!(m.contains("cert-authority"), "{m}"),
            other => panic!("{other:?}"),
        }
        let expired = format!("alice valid-before=\"20250101Z\" {PUBLIC}\n");
        match verify(&expired, &signature, b"sums\n", NOW).unwrap() {
            Err(Rejected::UnknownKey(m)) => assert!(m.contains("expired"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
