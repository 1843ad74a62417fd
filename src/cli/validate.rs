//! `ocikit validate`

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use ocikit::ops::validate::report::{self, Format, RenderOptions};
use ocikit::ops::validate::{self, Options};
use ocikit::progress::{NoProgress, Progress};

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
    "   \"summary\": {\"errors\", \"warnings\", \"notes\", \"suppressed\"},\n",
    "   \"stats\": {\"blobs\", \"bytes\", \"manifests\", \"layers\",\n",
    "             \"unreferenced\", \"unreferencedBytes\"},\n",
    "   \"findings\": [{\"rule\", \"level\": \"error\"|\"warning\"|\"info\", \"message\",\n",
    "                 \"file\"?, \"digest\"?, \"pointer\"?, \"entry\"?, \"suppressed\"?}]}\n",
    "\n",
    "file is relative to the layout, pointer a JSON pointer (RFC 6901) into it, entry a path in\n",
    "a layer's tar stream. --list-rules --format json prints\n",
    "  [{\"id\", \"level\", \"strictError\", \"source\", \"summary\"}]\n",
    "\n",
    "Findings of allowed rules (--allow, the configuration's allow) have \"suppressed\": true and\n",
    "are not counted in errors/warnings/notes. SARIF marks them with an external suppression.\n",
    "\n",
    "SARIF locations are relative to the uriBaseId LAYOUT (the layout). JUnit has one test case\n",
    "per rule checked; error-level findings are failures, warnings and notes go to <system-out>\n",
    "(allowed errors too).\n",
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
    /// Accept the findings of these rules (ids, comma-separated or repeated): they are still
    /// reported, as suppressed, but do not count towards the exit status. Adds to the
    /// configuration's `allow`.
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    allow: Vec<String>,
    /// The configuration file to read [default: .ocikit.toml beside the layout (in its parent
    /// directory), when it exists]. It holds `[validate] allow = ["RULE", …]`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    limits: super::LimitArgs,
}

/// `.ocikit.toml`: what a project decides once for every run.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    validate: ValidateConfig,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateConfig {
    /// Rules whose findings are accepted.
    #[serde(default)]
    allow: Vec<String>,
}

/// The file name looked for beside a layout.
const CONFIG_NAME: &str = ".ocikit.toml";

/// Reads `--config`, or `.ocikit.toml` in the directory that holds `target` (a layout or a
/// document) when there is one.
fn read_config(explicit: Option<&Path>, target: &Path) -> anyhow::Result<Config> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => {
            let parent = match target.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let candidate = parent.join(CONFIG_NAME);
            if !candidate.is_file() {
                return Ok(Config::default());
            }
            candidate
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the configuration {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        // One line: where, then what (toml's own rendering spans several lines).
        let at = e.span().map_or(String::new(), |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(" at line {line}, column {column}")
        });
        anyhow::anyhow!(
            "the configuration {} is not valid{at}: {}",
            path.display(),
            e.message().trim()
        )
    })
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
    let target = match (&args.document, &args.layout) {
        (Some(document), _) => document.clone(),
        (None, Some(layout)) => super::args::reference(layout)?.layout,
        (None, None) => PathBuf::from("."),
    };
    let mut allow = read_config(args.config.as_deref(), &target)?.validate.allow;
    allow.extend(args.allow.iter().cloned());
    validate::check_rule_ids(&allow).map_err(|e| anyhow::anyhow!("{e} (see --list-rules)"))?;
    let mut report = if let Some(path) = &args.document {
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
        let reference = super::args::whole_layout(target, "validate (NAMEs follow the LAYOUT)")?;
        let limits = args.limits.limits();
        let layout =
            ocikit::store::open_read(&reference, ocikit::store::Check::Unchecked, &limits)?;
        let mut options = Options::default();
        options.deep = args.deep;
        options.strict = args.strict;
        options.names = args.names.clone();
        options.allow_foreign = args.allow_foreign;
        options.allow = allow.clone();
        options.limits = limits;
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
    report.allow(&allow)?;
    let mut options = RenderOptions::default();
    options.color = format == Format::Text && color_wanted();
    options.verbose = args.verbose;
    options.document = args.document.is_some();
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
