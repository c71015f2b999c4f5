//! Real git objects for a repo's history: every change becomes a commit on a linear `main`, so
//! its sha is a true git commit id that the events, the GitHub JSON, PagerDuty and the git
//! repository ([`crate::writers::git`]) all share.
//!
//! The history, as the plan of issue 17 states it:
//! - commits in (`committed_at`, index in [`RepoHistory::changes`]) order, each the parent of the
//!   next (hotfixes, appended at the end of `changes`, fall into place by time);
//! - each commit's tree is the whole repo snapshot: every path ever touched, nested trees for
//!   directories, mode `100644` blobs; a path the commit touches gets the content
//!   `"{path} @ {n}\n"`, `n` the commit's 1-based position on `main`;
//! - author and committer are the change's developer ([`crate::commits`]), author time
//!   `authored_at`, committer time `committed_at`, both `+0000`; the message is the identity's.
//!
//! [`walk`] builds the objects one commit at a time and hands each to an [`ObjectSink`]: counting
//! them when ids are assigned ([`assign_commit_ids`]), or packing them when the repository is
//! written. Memory is the snapshot (a few dozen paths), never the objects.

use std::fmt;

use sha1::{Digest, Sha1};

use crate::commits::commit_identity;
use crate::delivery::RepoHistory;
use crate::org::Org;

/// A git object id (SHA-1).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjectId(pub [u8; 20]);

const HEX: &[u8; 16] = b"0123456789abcdef";

impl ObjectId {
    /// Appends the 40 lowercase hex digits to `out`.
    pub fn push_hex(&self, out: &mut Vec<u8>) {
        for byte in self.0 {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        }
    }

    /// The 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut out = Vec::with_capacity(40);
        self.push_hex(&mut out);
        out.into_iter().map(char::from).collect()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The kind of a git object, numbered as in a packfile entry's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A commit.
    Commit = 1,
    /// A tree (directory).
    Tree = 2,
    /// A blob (file content).
    Blob = 3,
}

impl ObjectKind {
    /// The name in a loose object's header: `commit`, `tree`, `blob`.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Commit => "commit",
            ObjectKind::Tree => "tree",
            ObjectKind::Blob => "blob",
        }
    }
}

/// The id of an object: SHA-1 of `"{kind} {len}\0"` and the body.
pub fn object_id(kind: ObjectKind, body: &[u8]) -> ObjectId {
    let mut hasher = Sha1::new();
    hasher.update(kind.name().as_bytes());
    hasher.update(b" ");
    hasher.update(body.len().to_string().as_bytes());
    hasher.update([0]);
    hasher.update(body);
    ObjectId(hasher.finalize().into())
}

/// Where [`walk`] hands each object it builds.
pub trait ObjectSink {
    /// Why taking an object failed.
    type Error;
    /// Takes one object (each is handed over once).
    fn object(&mut self, kind: ObjectKind, id: &ObjectId, body: &[u8]) -> Result<(), Self::Error>;
}

/// Counts objects and drops them.
#[derive(Debug, Default)]
pub struct CountObjects(pub u64);

impl ObjectSink for CountObjects {
    type Error = std::convert::Infallible;

    fn object(&mut self, _: ObjectKind, _: &ObjectId, _: &[u8]) -> Result<(), Self::Error> {
        self.0 += 1;
        Ok(())
    }
}

/// A repo's history as git commits, beside [`RepoHistory::changes`].
#[derive(Debug, Clone, Default)]
pub struct GitHistory {
    /// Change indices in commit order, oldest first: `main`'s history.
    pub order: Vec<usize>,
    /// Per change index: its 0-based position in [`GitHistory::order`].
    pub position: Vec<usize>,
    /// Per change index: the id of its commit's root tree.
    pub trees: Vec<ObjectId>,
    /// Objects in the repository: blobs, trees and commits.
    pub objects: u64,
}

impl GitHistory {
    /// The change whose commit is the parent of change `index`'s (`None` for the first commit).
    pub fn parent(&self, index: usize) -> Option<usize> {
        let position = *self.position.get(index)?;
        position.checked_sub(1).map(|p| self.order[p])
    }

    /// The change at the tip of `main` (`None` for a repo without commits).
    pub fn head(&self) -> Option<usize> {
        self.order.last().copied()
    }
}

/// The commit order of a repo's changes: by (`committed_at`, index).
pub fn commit_order(history: &RepoHistory) -> Vec<usize> {
    let mut order: Vec<usize> = (0..history.changes.len()).collect();
    order.sort_by_key(|&c| (history.changes[c].committed_at, c));
    order
}

enum Node {
    File(ObjectId),
    Dir(Box<Dir>),
}

struct Entry {
    name: String,
    node: Node,
}

/// A directory of the snapshot, its entries in git's order, its id cached while clean.
#[derive(Default)]
struct Dir {
    entries: Vec<Entry>,
    id: ObjectId,
    dirty: bool,
}

/// Git's tree order: by name bytes, a directory's name compared as if it ended in `/`.
fn git_order(a: &str, a_dir: bool, b: &str, b_dir: bool) -> std::cmp::Ordering {
    let tail = |dir: bool| if dir { &b"/"[..] } else { &b""[..] };
    a.as_bytes()
        .iter()
        .chain(tail(a_dir))
        .cmp(b.as_bytes().iter().chain(tail(b_dir)))
}

impl Dir {
    /// Sets the blob of `path` (relative to this directory), creating directories on the way.
    fn set(&mut self, path: &str, blob: ObjectId) {
        self.dirty = true;
        let (name, rest) = match path.split_once('/') {
            Some((name, rest)) => (name, Some(rest)),
            None => (path, None),
        };
        let is_dir = rest.is_some();
        let found = self
            .entries
            .binary_search_by(|e| git_order(&e.name, matches!(e.node, Node::Dir(_)), name, is_dir));
        let at = match found {
            Ok(at) => at,
            Err(at) => {
                let node = match rest {
                    Some(_) => Node::Dir(Box::default()),
                    None => Node::File(blob),
                };
                self.entries.insert(
                    at,
                    Entry {
                        name: name.to_string(),
                        node,
                    },
                );
                at
            }
        };
        match (&mut self.entries[at].node, rest) {
            (Node::Dir(dir), Some(rest)) => dir.set(rest, blob),
            (Node::File(id), None) => *id = blob,
            // The generator's paths never use a name as both a file and a directory.
            _ => unreachable!("{path} is both a file and a directory"),
        }
    }

    /// Writes the dirty trees under and including this one, returning this tree's id.
    fn flush<S: ObjectSink>(
        &mut self,
        body: &mut Vec<u8>,
        sink: &mut S,
    ) -> Result<ObjectId, S::Error> {
        if !self.dirty {
            return Ok(self.id);
        }
        for entry in &mut self.entries {
            if let Node::Dir(dir) = &mut entry.node {
                dir.flush(body, sink)?;
            }
        }
        body.clear();
        for entry in &self.entries {
            let (mode, id): (&[u8], ObjectId) = match &entry.node {
                Node::File(id) => (b"100644 ", *id),
                Node::Dir(dir) => (b"40000 ", dir.id),
            };
            body.extend_from_slice(mode);
            body.extend_from_slice(entry.name.as_bytes());
            body.push(0);
            body.extend_from_slice(&id.0);
        }
        self.id = object_id(ObjectKind::Tree, body);
        sink.object(ObjectKind::Tree, &self.id, body)?;
        self.dirty = false;
        Ok(self.id)
    }
}

/// One commit as [`walk`] built it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkedCommit {
    /// The change (index into [`RepoHistory::changes`]).
    pub change: usize,
    /// Its commit id.
    pub commit: ObjectId,
    /// Its root tree.
    pub tree: ObjectId,
}

/// Builds every object of the history in `order` (see [`commit_order`]), handing each to `sink`
/// (a commit after its blobs and trees), and returns the commits, oldest first.
pub fn walk<S: ObjectSink>(
    org: &Org,
    history: &RepoHistory,
    order: &[usize],
    sink: &mut S,
) -> Result<Vec<WalkedCommit>, S::Error> {
    let mut root = Dir::default();
    let mut body = Vec::with_capacity(1024);
    let mut tree_body = Vec::with_capacity(1024);
    let mut parent: Option<ObjectId> = None;
    let mut commits = Vec::with_capacity(order.len());
    for (position, &index) in order.iter().enumerate() {
        let change = &history.changes[index];
        let n = position + 1;
        for path in &change.paths {
            body.clear();
            body.extend_from_slice(path.as_bytes());
            body.extend_from_slice(format!(" @ {n}\n").as_bytes());
            let blob = object_id(ObjectKind::Blob, &body);
            sink.object(ObjectKind::Blob, &blob, &body)?;
            root.set(path, blob);
        }
        // A first commit touching nothing (none is generated) gets the empty tree.
        root.dirty |= root.id == ObjectId::default();
        let tree = root.flush(&mut tree_body, sink)?;
        let identity = commit_identity(org, history, index);
        let signature = identity.author.signature();
        body.clear();
        body.extend_from_slice(b"tree ");
        tree.push_hex(&mut body);
        if let Some(parent) = parent {
            body.extend_from_slice(b"\nparent ");
            parent.push_hex(&mut body);
        }
        body.extend_from_slice(
            format!(
                "\nauthor {signature} {} +0000\ncommitter {signature} {} +0000\n\n{}",
                change.authored_at,
                change.committed_at,
                identity.message()
            )
            .as_bytes(),
        );
        let commit = object_id(ObjectKind::Commit, &body);
        sink.object(ObjectKind::Commit, &commit, &body)?;
        parent = Some(commit);
        commits.push(WalkedCommit {
            change: index,
            commit,
            tree,
        });
    }
    Ok(commits)
}

/// Replaces every [`crate::delivery::Change::sha`] of `history` by its git commit id and fills
/// [`RepoHistory::git`]. Draws nothing from any random stream.
pub fn assign_commit_ids(org: &Org, history: &mut RepoHistory) {
    let order = commit_order(history);
    let mut count = CountObjects::default();
    let commits = match walk(org, history, &order, &mut count) {
        Ok(commits) => commits,
        Err(never) => match never {},
    };
    let mut git = GitHistory {
        position: vec![0; history.changes.len()],
        trees: vec![ObjectId::default(); history.changes.len()],
        objects: count.0,
        order,
    };
    for (position, walked) in commits.iter().enumerate() {
        git.position[walked.change] = position;
        git.trees[walked.change] = walked.tree;
        history.changes[walked.change].sha = walked.commit.to_hex();
    }
    history.git = git;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_match_git() {
        // `printf 'hello\n' | git hash-object --stdin`; `git hash-object -t tree /dev/null`.
        assert_eq!(
            object_id(ObjectKind::Blob, b"hello\n").to_hex(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            object_id(ObjectKind::Tree, b"").to_hex(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    /// Writes each object as a loose object file, so `git fsck` rehashes every one.
    struct LooseObjects(std::path::PathBuf);

    impl ObjectSink for LooseObjects {
        type Error = std::io::Error;

        fn object(&mut self, kind: ObjectKind, id: &ObjectId, body: &[u8]) -> std::io::Result<()> {
            let hex = id.to_hex();
            let dir = self.0.join("objects").join(&hex[..2]);
            std::fs::create_dir_all(&dir)?;
            let mut object = format!("{} {}\0", kind.name(), body.len()).into_bytes();
            object.extend_from_slice(body);
            let mut file = Vec::new();
            crate::writers::git::push_zlib_stored(&object, &mut file);
            std::fs::write(dir.join(&hex[2..]), file)
        }
    }

    fn git(repo: &std::path::Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    #[test]
    fn commit_ids_are_the_ids_git_computes() {
        let org = Org::plan(crate::Scale::Small);
        let mut ids = crate::delivery::Ids::default();
        // acme/platform: a monorepo, with hotfixes.
        let history = crate::delivery::generate_repo(&org, 2, crate::DEFAULT_SEED, &mut ids);
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = dir.path().join("platform.git");
        for sub in ["objects", "refs/heads"] {
            std::fs::create_dir_all(repo.join(sub)).expect("mkdir");
        }
        std::fs::write(repo.join("HEAD"), "ref: refs/heads/main\n").expect("HEAD");
        std::fs::write(repo.join("config"), "[core]\n\tbare = true\n").expect("config");
        let mut sink = LooseObjects(repo.clone());
        let walked = walk(&org, &history, &history.git.order, &mut sink).expect("write objects");
        let head = history.git.head().expect("commits");
        std::fs::write(
            repo.join("refs/heads/main"),
            format!("{}\n", history.changes[head].sha),
        )
        .expect("ref");
        assert_eq!(walked.len(), history.changes.len());
        let loose: u64 = git(&repo, &["count-objects", "-v"])
            .lines()
            .find_map(|l| l.strip_prefix("count: "))
            .and_then(|n| n.parse().ok())
            .expect("count");
        assert_eq!(loose, history.git.objects);
        git(&repo, &["fsck", "--strict", "--no-dangling"]);
        let log = git(&repo, &["log", "--format=%H %P %T %at %ct", "main"]);
        let expected: Vec<String> = history
            .git
            .order
            .iter()
            .rev()
            .map(|&c| {
                let change = &history.changes[c];
                let parent = history
                    .git
                    .parent(c)
                    .map(|p| history.changes[p].sha.clone());
                format!(
                    "{} {} {} {} {}",
                    change.sha,
                    parent.unwrap_or_default(),
                    history.git.trees[c],
                    change.authored_at,
                    change.committed_at
                )
            })
            .collect();
        assert_eq!(log.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn trees_sort_directories_as_if_they_ended_in_a_slash() {
        let mut root = Dir::default();
        for path in ["a-b/x", "a/x", "a.rs", "b"] {
            root.set(path, ObjectId::default());
        }
        let names: Vec<&str> = root.entries.iter().map(|e| e.name.as_str()).collect();
        // "a-b/" < "a.rs" < "a/" < "b" bytewise ('-' 0x2d, '.' 0x2e, '/' 0x2f).
        assert_eq!(names, ["a-b", "a.rs", "a", "b"]);
    }
}
