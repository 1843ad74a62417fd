//! `ocikit validate`

use std::io::Write;
use std::path::PathBuf;

use ocikit::reference::{Reference, Transport};
use ocikit::validate::{self, Level, NoProgress, Options};

use super::output::stdout;

/// Check a layout (directory or archive) against every rule of the OCI image-spec v1.1 and the
/// referrers conventions, or check one JSON document with --document.
///
/// Findings name the rule (see --list-rules), the file, the digest and the JSON pointer. Exit
/// status: 0 no error-level findings, 1 error-level findings, 2 could not run.
#[derive(Debug, clap::Args)]
#[command(after_help = "EXIT STATUS:\n  0  no error-level findings\n  1  error-level findings\n  2  could not run: the path is missing or unreadable, bad arguments")]
pub struct Args {
    /// The layout directory or archive (.tar, .tar.gz, .tar.zst).
    #[arg(required_unless_present_any = ["document", "list_rules"])]
    layout: Option<String>,
    /// Validate only what these names reach (matched as in references: exact, then by tag).
    names: Vec<String>,
    /// Also decompress every layer, check its diff_id and the tar rules (T1–T11).
    #[arg(long)]
    deep: bool,
    /// Make SHOULD-level rules errors.
    #[arg(long)]
    strict: bool,
    /// Accept missing layers whose descriptors have urls (foreign layers).
    #[arg(long)]
    allow_foreign: bool,
    /// Validate one JSON document (manifest, index, config, descriptor, oci-layout) on its own;
    /// rules that need blobs are skipped.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["layout", "deep"])]
    document: Option<PathBuf>,
    /// The media type of --document, when it does not say (detected otherwise).
    #[arg(long, value_name = "TYPE", requires = "document")]
    media_type: Option<String>,
    /// List every rule with its id, level and source, and exit.
    #[arg(long)]
    list_rules: bool,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut out = stdout();
    if args.list_rules {
        for rule in validate::RULES {
            let level = if rule.strict_error {
                "warning (error with --strict)".to_string()
            } else {
                rule.level.name().to_string()
            };
            writeln!(out, "{:<4} {:<30} {}  [{}]", rule.id, level, rule.summary, rule.source)?;
        }
        out.flush()?;
        return Ok(super::EXIT_OK);
    }
    let report = if let Some(path) = &args.document {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        validate::validate_document(&bytes, args.media_type.as_deref(), &path.display().to_string(), args.strict)
    } else {
        let target = args.layout.as_deref().unwrap_or_default();
        let reference = Reference::parse(target)?;
        if reference.name.is_some() || reference.digest.is_some() {
            anyhow::bail!("validate takes a LAYOUT and optional NAMEs, not a reference: {target}");
        }
        let layout = open_unchecked(&reference)?;
        let options = Options {
            deep: args.deep,
            strict: args.strict,
            names: args.names.clone(),
            allow_foreign: args.allow_foreign,
        };
        validate::validate_layout(layout.as_ref(), &options, &NoProgress)?
    };
    for f in &report.findings {
        let mut location = f.file.clone().unwrap_or_default();
        if let Some(p) = &f.pointer {
            location.push_str(&format!(" at {p}"));
        }
        writeln!(out, "{} {} {}: {}", f.level.name(), f.rule, location, f.message)?;
    }
    writeln!(
        out,
        "{} errors, {} warnings, {} notes",
        report.count(Level::Error),
        report.count(Level::Warning),
        report.count(Level::Info)
    )?;
    out.flush()?;
    Ok(if report.is_clean() { super::EXIT_OK } else { super::EXIT_FINDINGS })
}

/// Opens a layout without requiring a valid oci-layout: validate reports that as a finding.
fn open_unchecked(reference: &Reference) -> anyhow::Result<Box<dyn ocikit::layout::LayoutRead>> {
    let path = reference.layout.as_path();
    let archive = matches!(reference.transport, Transport::Archive | Transport::DockerArchive)
        || path.is_file();
    Ok(if archive {
        Box::new(ocikit::archive::Archive::open_unchecked(path)?)
    } else {
        Box::new(ocikit::layout::Layout::open_unchecked(path)?)
    })
}
