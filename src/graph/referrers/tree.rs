//! Referrers of referrers: the tree below a subject (signatures of SBOMs of an image…).

use std::collections::BTreeSet;

use serde::Serialize;

use super::discovery::{Discovery, Filter, Referrer};
use crate::spec::digest::Digest;
use crate::spec::document::{Annotations, Descriptor, Document};

/// A node of a referrers tree: the subject at the root, its referrers below it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// What the node is (for the root: the subject, found in no convention).
    #[serde(flatten)]
    pub item: Referrer,
    /// True when this referrer is also one of its own ancestors here (not expanded again).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cycle: bool,
    /// Its referrers; absent where the listing stopped (`--depth`, a cycle, or no `--tree`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrers: Option<Vec<Node>>,
}

impl Node {
    /// The root of a tree: the subject as it was resolved.
    pub fn root(descriptor: &Descriptor, document: &Document) -> Node {
        Node::from(Referrer {
            digest: descriptor.digest.clone(),
            media_type: descriptor.media_type.clone(),
            artifact_type: document.listed_artifact_type().map(str::to_string),
            size: descriptor.size,
            annotations: document.annotations().cloned().unwrap_or_default(),
            found_in: BTreeSet::new(),
            problem: None,
        })
    }

    /// The root of a tree whose subject is not in the layout (referrers may outlive it).
    pub fn absent(digest: &Digest) -> Node {
        Node::from(Referrer {
            digest: digest.clone(),
            media_type: String::new(),
            artifact_type: None,
            size: 0,
            annotations: Annotations::new(),
            found_in: BTreeSet::new(),
            problem: Some("the subject is not in the layout".into()),
        })
    }
}

impl From<Referrer> for Node {
    fn from(item: Referrer) -> Node {
        Node {
            item,
            cycle: false,
            referrers: None,
        }
    }
}

/// What reading one subject's bookkeeping found.
impl Discovery<'_> {
    /// The referrers tree below `root`: `filter` applies at every level, `depth` (≥ 1) stops
    /// the descent (`None`: all the way down). A referrer that is already an ancestor is
    /// marked as a cycle and not expanded again.
    pub fn tree(&self, mut root: Node, filter: &Filter, depth: Option<usize>) -> Node {
        let mut path = vec![root.item.digest.clone()];
        root.referrers = Some(self.expand(&root.item.digest, filter, depth, &mut path));
        root
    }

    fn expand(
        &self,
        subject: &Digest,
        filter: &Filter,
        depth: Option<usize>,
        path: &mut Vec<Digest>,
    ) -> Vec<Node> {
        let below = depth.map(|d| d.saturating_sub(1));
        self.referrers(subject)
            .into_iter()
            .filter(|r| filter.matches(r))
            .map(|referrer| {
                let mut node = Node::from(referrer);
                if path.contains(&node.item.digest) {
                    node.cycle = true;
                } else if below != Some(0) {
                    path.push(node.item.digest.clone());
                    node.referrers = Some(self.expand(&node.item.digest, filter, below, path));
                    path.pop();
                }
                node
            })
            .collect()
    }
}
