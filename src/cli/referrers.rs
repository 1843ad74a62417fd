//! `ocikit referrers` and `ocikit referrers sync`

use std::io::Write;

use ocikit::graph::referrers::{Discovery, Filter, Format, Node, Scope};
use ocikit::spec::document::CREATED;

use super::output::{human_size, print_json, stdout, Table};

/// List the referrers (signatures, SBOMs, attestations…) of an image or index.
///
/// Referrers are read from every convention a layout may use: index.json entries whose
/// manifest has a subject, untagged (oras) or named (what a copy from a registry without the
/// referrers API leaves), the fallback-tag index sha256-<hex> (regctl), and, with --scan,
/// manifests found only in blobs/ (cosign). They are merged and each is listed once, with
/// where it was found. Only index.json, the documents of its entries, the subject's fallback
/// index and the referrers' manifests are read unless --scan. Exits 2 if something could not
/// be read, after listing what could.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The subject: LAYOUT[:NAME][@DIGEST] (a directory or an archive). LAYOUT@DIGEST works
    /// even when the subject itself is gone.
    #[arg(value_name = "REF", required = true)]
    subject: Option<String>,
    /// Only referrers of this artifact type (at every level of --tree).
    #[arg(long, value_name = "MEDIATYPE")]
    artifact_type: Option<String>,
    /// Only referrers with this annotation (repeatable: all must match; at every level of
    /// --tree).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Show the whole hierarchy: referrers of referrers (signatures of SBOMs…), safe on
    /// cycles.
    #[arg(long)]
    tree: bool,
    /// Stop N levels below REF (implies --tree; 1 lists REF's referrers only).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    depth: Option<u64>,
    /// Also read every document-sized blob in blobs/ to find referrers that nothing records.
    #[arg(long)]
    scan: bool,
    #[command(flatten)]
    platform: super::PlatformArg,
    #[command(flatten)]
    limits: super::LimitArgs,
    /// Print JSON: the subject as {digest, mediaType, artifactType, size, annotations,
    /// referrers: [...]}, each referrer of the same shape plus foundIn (index, tag, scan),
    /// problem and cycle where they apply; referrers is absent where the listing stopped.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    Sync(SyncArgs),
}

/// Rewrite a layout's referrer bookkeeping to one convention.
///
/// The truth is the manifests with a subject found through index.json (named or not), the
/// fallback-tag indexes and, with --scan, blobs/. sync adds missing untagged entries and
/// fallback indexes, removes those the format does not want or that list what is not a
/// referrer of their subject, and drops fallback indexes that list nothing. Running it twice
/// changes nothing the second time.
#[derive(Debug, clap::Args)]
#[command(after_help = super::SUBCOMMAND_EXIT_STATUS_HELP)]
struct SyncArgs {
    /// The layout directory.
    layout: String,
    /// The convention to keep: index (untagged index.json entries), tag (fallback-tag
    /// indexes) or both.
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: FormatArg,
    /// Also take referrers found only in blobs/ into the bookkeeping.
    #[arg(long)]
    scan: bool,
    /// Print what changed as JSON: {referrers, addedEntries, removedEntries, writtenTags,
    /// removedTags, problems}.
    #[arg(long)]
    json: bool,
}

/// How referrers are recorded in a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Untagged index.json entries (oras).
    Index,
    /// Fallback-tag indexes sha256-<hex> (regctl, distribution-spec).
    Tag,
    /// Both.
    Both,
}

impl From<FormatArg> for Format {
    fn from(value: FormatArg) -> Format {
        match value {
            FormatArg::Index => Format::Index,
            FormatArg::Tag => Format::Tag,
            FormatArg::Both => Format::Both,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(Sub::Sync(sync)) = args.command {
        return run_sync(sync);
    }
    let Some(target) = args.subject.as_deref() else {
        anyhow::bail!("referrers needs REF (or the sync subcommand)");
    };
    let reference = super::args::reference(target)?;
    let filter = Filter {
        artifact_type: args.artifact_type.clone(),
        annotations: args
            .annotations
            .iter()
            .map(|a| ocikit::ops::artifact::parse_annotation(a))
            .collect::<ocikit::Result<_>>()?,
    };
    let layout = ocikit::store::open_read(
        &reference,
        ocikit::store::Check::Layout,
        &args.limits.limits(),
    )?;
    let platform = args.platform.platform.as_ref();
    let (root, name) = match ocikit::graph::resolve::resolve(layout.as_ref(), &reference, platform)
    {
        Ok(resolved) => (
            Node::root(&resolved.descriptor, &resolved.document),
            resolved.name,
        ),
        Err(ocikit::Error::BlobNotFound { digest, .. })
            if reference.name.is_none() && reference.digest.as_ref() == Some(&digest) =>
        {
            (Node::absent(&digest), None)
        }
        Err(e) => return Err(e.into()),
    };
    let discovery = Discovery::new(layout.as_ref(), Scope { scan: args.scan })?;
    let tree = args.tree || args.depth.is_some();
    let depth = match (tree, args.depth) {
        (false, _) => Some(1),
        (true, depth) => depth.map(|d| usize::try_from(d).unwrap_or(usize::MAX)),
    };
    let root = discovery.tree(root, &filter, depth);
    if args.json {
        print_json(&root)?;
    } else if tree {
        let mut out = stdout();
        let label = match &name {
            Some(name) => format!("{} ({name})", root.item.digest),
            None => root.item.digest.to_string(),
        };
        writeln!(out, "{label}")?;
        write_tree(&mut out, root.referrers.as_deref().unwrap_or_default(), "")?;
        out.flush()?;
    } else {
        let mut table = Table::new(&["DIGEST", "ARTIFACT TYPE", "SIZE", "CREATED", "FOUND IN"]);
        for node in root.referrers.as_deref().unwrap_or_default() {
            table.push(vec![
                node.item.digest.to_string(),
                node.item
                    .artifact_type
                    .clone()
                    .unwrap_or_else(|| "-".into()),
                human_size(node.item.size),
                node.item
                    .annotations
                    .get(CREATED)
                    .cloned()
                    .unwrap_or_else(|| "-".into()),
                found_in(node),
            ]);
        }
        let mut out = stdout();
        table.write(&mut out)?;
        out.flush()?;
    }
    for warning in discovery.warnings() {
        eprintln!("warning: {warning}");
    }
    let mut problems = discovery.problems();
    collect_problems(&root, &mut problems);
    for problem in &problems {
        eprintln!("error: {problem}");
    }
    Ok(if problems.is_empty() {
        super::EXIT_OK
    } else {
        super::EXIT_FAILURE
    })
}

fn found_in(node: &Node) -> String {
    node.item
        .found_in
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn collect_problems(node: &Node, out: &mut Vec<String>) {
    for child in node.referrers.as_deref().unwrap_or_default() {
        if let Some(problem) = &child.item.problem {
            out.push(format!("referrer {}: {problem}", child.item.digest));
        }
        collect_problems(child, out);
    }
}

fn write_tree(out: &mut dyn Write, nodes: &[Node], prefix: &str) -> std::io::Result<()> {
    for (i, node) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let (branch, indent) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let mut line = format!(
            "{prefix}{branch}{}  {}  [{}]",
            node.item.digest,
            node.item
                .artifact_type
                .as_deref()
                .unwrap_or(&node.item.media_type),
            found_in(node)
        );
        if node.cycle {
            line.push_str("  (cycle: already listed above)");
        }
        if node.item.problem.is_some() {
            line.push_str("  (unreadable)");
        }
        writeln!(out, "{line}")?;
        let children = node.referrers.as_deref().unwrap_or_default();
        write_tree(out, children, &format!("{prefix}{indent}"))?;
    }
    Ok(())
}

fn run_sync(args: SyncArgs) -> anyhow::Result<u8> {
    let reference = super::args::whole_layout(&args.layout, "referrers sync")?;
    let layout = ocikit::store::open_write(&reference)?;
    let report = ocikit::graph::referrers::sync(&layout, args.format.into(), args.scan)?;
    if args.json {
        print_json(&report)?;
    } else {
        eprintln!(
            "{} referrer{}: {} entr{} added, {} removed; {} fallback tag{} written, {} removed",
            report.referrers,
            if report.referrers == 1 { "" } else { "s" },
            report.added_entries.len(),
            if report.added_entries.len() == 1 {
                "y"
            } else {
                "ies"
            },
            report.removed_entries.len(),
            report.written_tags.len(),
            if report.written_tags.len() == 1 {
                ""
            } else {
                "s"
            },
            report.removed_tags.len()
        );
    }
    for problem in &report.problems {
        eprintln!("warning: {problem}");
    }
    Ok(super::EXIT_OK)
}
