//! `ocikit validate`

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use ocikit::ops::validate::report::{self, Format, RenderOptions};
use ocikit::ops::validate::{self, Options};
use ocikit::progress::{NoProgress, Progress};
use ocikit::spec::reference::Reference;

use super::output::stdout;

macro_rules! exit_status {
    () => {
        "EXIT STATUS:\n  0  no error-level findings\n  1  error-level findings\n  2  could not run: the path is missing or unreadable, bad arguments"
    };
}

/// The JSON schema and the exit status, for `--help` and the man page.
const AFTER_LONG_HELP: &str = concat!(
    "JSON OUTPUT (--format json), schemaVersion 1: fields may be added, never renamed or\n",
    "removed; absent optional fields are omitted.\n",
    "  {\"schemaVersion\": 1, \"tool\": {\"name\", \"version\"},\n",
    "   \"target\", \"strict\", \"deep\",\n",
    "   \"summary\": {\"errors\", \"warnings\", \"notes\"},\n",
    "   \"stats\": {\"blobs\", \"bytes\", \"manifests\", \"layers\",\n",
    "             \"unreferenced\", \"unreferencedBytes\"},\n",
    "   \"findings\": [{\"rule\", \"level\": \"error\"|\"warning\"|\"info\", \"message\",\n",
    "                 \"file\"?, \"digest\"?, \"pointer\"?, \"entry\"?}]}\n",
    "\n",
    "file is relative to the layout, pointer a JSON pointer (RFC 6901) into it, entry a path in\n",
    "a layer's tar stream. --list-rules --format json prints\n",
    "  [{\"id\", \"level\", \"strictError\", \"source\", \"summary\"}]\n",
    "\n",
    "SARIF locations are relative to the uriBaseId LAYOUT (the layout). JUnit has one test case\n",
    "per rule checked; error-level findings are failures, warnings and notes go to <system-out>.\n",
    "\n",
    exit_status!()
);

/// Check a layout (directory or archive) against every rule of the OCI image-spec v1.1 and the
/// referrers conventions, or check one JSON document with --document.
///
/// Findings name the rule (see --list-rules), the file, the digest, the JSON pointer and the tar
/// entry.
#[derive(Debug, clap::Args)]
#[command(after_help = exit_status!(), after_long_help = AFTER_LONG_HELP)]
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
    /// List every rule with its id, level and source, and exit (as text or json).
    #[arg(long)]
    list_rules: bool,
    /// The output format.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// List info-level findings one by one (text), instead of counting them.
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    limits: super::LimitArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum FormatArg {
    /// For people: findings grouped by object, colored on a terminal unless NO_COLOR is set
    Text,
    /// A stable JSON document (schema below)
    Json,
    /// SARIF 2.1.0, for code-scanning upload
    Sarif,
    /// JUnit XML, one test case per rule, for CI test reports
    Junit,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
            FormatArg::Sarif => Format::Sarif,
            FormatArg::Junit => Format::Junit,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let format = Format::from(args.format);
    if args.list_rules {
        if !matches!(format, Format::Text | Format::Json) {
            anyhow::bail!("--list-rules prints text or json, not {}", format.name());
        }
        let mut out = stdout();
        report::render_rules(validate::RULES, format, &mut out)?;
        out.flush()?;
        return Ok(super::EXIT_OK);
    }
    let report = if let Some(path) = &args.document {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        validate::validate_document(
            &bytes,
            args.media_type.as_deref(),
            &path.display().to_string(),
            args.strict,
        )
    } else {
        let target = args.layout.as_deref().unwrap_or_default();
        let reference = Reference::parse(target)?;
        if reference.name.is_some() || reference.digest.is_some() {
            anyhow::bail!("validate takes a LAYOUT and optional NAMEs, not a reference: {target}");
        }
        let limits = args.limits.limits();
        let layout =
            ocikit::store::open_read(&reference, ocikit::store::Check::Unchecked, &limits)?;
        let options = Options {
            deep: args.deep,
            strict: args.strict,
            names: args.names.clone(),
            allow_foreign: args.allow_foreign,
            limits,
        };
        {
            // Only --deep reads enough to need a bar; it is cleared before the report prints.
            let bar = args.deep.then(|| super::progress::Bar::new("validating"));
            let progress: &dyn Progress = match &bar {
                Some(bar) => bar,
                None => &NoProgress,
            };
            validate::validate_layout(layout.as_ref(), &options, progress)?
        }
    };
    let options = RenderOptions {
        color: format == Format::Text && color_wanted(),
        verbose: args.verbose,
        document: args.document.is_some(),
    };
    let mut out = stdout();
    report::render(&report, format, &options, &mut out)?;
    out.flush()?;
    Ok(if report.is_clean() {
        super::EXIT_OK
    } else {
        super::EXIT_FINDINGS
    })
}

/// Colors only on a terminal, and not when `NO_COLOR` is set (https://no-color.org).
fn color_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
