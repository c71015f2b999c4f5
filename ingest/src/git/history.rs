//! A local clone's commit graph and, per commit, the paths it touched, read with `gix` straight
//! from the object database: no worktree, no index, no network.
//!
//! The graph is every commit reachable from any reference (branches, remote-tracking branches,
//! tags) and HEAD, so a deployment of a release branch's commit is found too. A commit's paths are
//! those whose blob, mode or presence differs between its tree and its first parent's (all its
//! files for a root commit), as `git show --name-only` lists them for a non-merge commit and
//! GitHub's commit API for a merge. Trees are compared entry by entry, a subtree whose id is the
//! same on both sides skipped whole, so a commit costs a few tree reads; commits are diffed on
//! every core, each thread with its own object cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::objs::Find;
use gix::objs::tree::EntryKind;

use crate::IngestError;

/// One commit of the graph.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Its id.
    pub id: ObjectId,
    /// Its parents, as indexes into [`History::commits`] (first parent first).
    pub parents: Vec<u32>,
    /// Its root tree.
    pub tree: ObjectId,
    /// Author time, seconds since the epoch.
    pub authored_at: i64,
    /// Committer time, seconds since the epoch.
    pub committed_at: i64,
}

/// The commit graph of one repository.
#[derive(Debug, Default)]
pub struct History {
    /// Every commit reachable from a reference, parents after their children.
    pub commits: Vec<Commit>,
    /// Where each commit is in `commits`.
    pub index: HashMap<ObjectId, u32>,
    /// The references' tips, `name sha` each, sorted: the repository's state, kept as the cursor.
    pub tips: Vec<String>,
}

fn failed(path: &Path, what: &str, error: impl std::fmt::Display) -> IngestError {
    IngestError::invalid(path, None, None, format!("{what}: {error}"))
}

/// Opens the repository at `path` (a clone's folder, its `.git`, or a bare repository), reading
/// no user or system configuration.
pub fn open(path: &Path) -> Result<gix::Repository, IngestError> {
    let mut repo = gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| {
        failed(
            path,
            "not a git repository (expected a clone's folder or a bare repository)",
            e,
        )
    })?;
    repo.object_cache_size_if_unset(8 << 20);
    Ok(repo)
}

/// Reads the commit graph of the repository at `path`.
pub fn read(path: &Path) -> Result<History, IngestError> {
    let repo = open(path)?;
    let hash_kind = repo.object_hash();
    let mut starts = Vec::new();
    let mut tips = Vec::new();
    if let Ok(head) = repo.head_id() {
        starts.push(head.detach());
        tips.push(format!("HEAD {}", head.detach()));
    }
    let platform = repo
        .references()
        .map_err(|e| failed(path, "cannot list references", e))?;
    let all = platform
        .all()
        .map_err(|e| failed(path, "cannot list references", e))?;
    for reference in all {
        let mut reference = reference.map_err(|e| failed(path, "cannot read a reference", e))?;
        let name = reference.name().as_bstr().to_string();
        if name.starts_with("refs/stash") {
            continue;
        }
        // A reference to something other than a commit (a tag of a tree) is skipped.
        let Ok(commit) = reference.peel_to_commit() else {
            continue;
        };
        starts.push(commit.id);
        tips.push(format!("{name} {}", commit.id));
    }
    tips.sort();
    tips.dedup();

    let mut history = History {
        tips,
        ..History::default()
    };
    let mut parent_ids: Vec<Vec<ObjectId>> = Vec::new();
    let mut stack = starts;
    let mut buffer = Vec::new();
    while let Some(id) = stack.pop() {
        if history.index.contains_key(&id) {
            continue;
        }
        let data = repo
            .objects
            .try_find(&id, &mut buffer)
            .map_err(|e| failed(path, &format!("cannot read commit {id}"), e))?
            .ok_or_else(|| {
                failed(
                    path,
                    &format!("commit {id}"),
                    "missing from the repository (a shallow or partial clone?)",
                )
            })?;
        let commit = gix::objs::CommitRef::from_bytes(data.data, hash_kind)
            .map_err(|e| failed(path, &format!("commit {id} is malformed"), e))?;
        let authored_at = commit.author().map(|s| s.seconds()).unwrap_or_default();
        let committed_at = commit.committer().map(|s| s.seconds()).unwrap_or_default();
        let parents: Vec<ObjectId> = commit.parents().collect();
        let at = history.commits.len() as u32;
        history.index.insert(id, at);
        history.commits.push(Commit {
            id,
            parents: Vec::new(),
            tree: commit.tree(),
            authored_at,
            committed_at,
        });
        for parent in parents.iter().rev() {
            if !history.index.contains_key(parent) {
                stack.push(*parent);
            }
        }
        parent_ids.push(parents);
    }
    for (commit, parents) in history.commits.iter_mut().zip(parent_ids) {
        // A parent missing from a shallow clone is left out: the commit is a root here.
        commit.parents = parents
            .iter()
            .filter_map(|p| history.index.get(p).copied())
            .collect();
    }
    Ok(history)
}

/// One tree entry, owned.
#[derive(Debug, Clone)]
struct Entry {
    name: Vec<u8>,
    is_tree: bool,
    oid: ObjectId,
    mode: u16,
}

/// Reads trees through the object database, keeping the last few thousand decoded: a commit's
/// parent's trees are mostly the previous commit's.
struct Trees {
    repo: gix::Repository,
    path: PathBuf,
    buffer: Vec<u8>,
    cache: HashMap<ObjectId, std::sync::Arc<Vec<Entry>>>,
}

impl Trees {
    const CACHE_TREES: usize = 4096;

    fn get(&mut self, id: &ObjectId) -> Result<std::sync::Arc<Vec<Entry>>, IngestError> {
        if let Some(entries) = self.cache.get(id) {
            return Ok(entries.clone());
        }
        let hash_kind = self.repo.object_hash();
        let data = self
            .repo
            .objects
            .try_find(id, &mut self.buffer)
            .map_err(|e| failed(&self.path, &format!("cannot read tree {id}"), e))?
            .ok_or_else(|| {
                failed(
                    &self.path,
                    &format!("tree {id}"),
                    "missing from the repository",
                )
            })?;
        let mut entries = Vec::new();
        for entry in gix::objs::TreeRefIter::from_bytes(data.data, hash_kind) {
            let entry =
                entry.map_err(|e| failed(&self.path, &format!("tree {id} is malformed"), e))?;
            let kind = entry.mode.kind();
            entries.push(Entry {
                name: entry.filename.to_vec(),
                is_tree: kind == EntryKind::Tree,
                oid: entry.oid.to_owned(),
                mode: entry.mode.value(),
            });
        }
        if self.cache.len() >= Self::CACHE_TREES {
            self.cache.clear();
        }
        let entries = std::sync::Arc::new(entries);
        self.cache.insert(*id, entries.clone());
        Ok(entries)
    }

    /// Every blob path under `tree`, appended to `out` with `prefix`.
    fn all_paths(
        &mut self,
        tree: &ObjectId,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), IngestError> {
        let entries = self.get(tree)?;
        for entry in entries.iter() {
            let path = join(prefix, &entry.name);
            if entry.is_tree {
                self.all_paths(&entry.oid, &path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }

    /// The paths that differ between trees `old` and `new` (either absent), appended to `out`.
    fn diff(
        &mut self,
        old: Option<&ObjectId>,
        new: Option<&ObjectId>,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), IngestError> {
        match (old, new) {
            (None, None) => Ok(()),
            (None, Some(tree)) | (Some(tree), None) => self.all_paths(tree, prefix, out),
            (Some(a), Some(b)) if a == b => Ok(()),
            (Some(a), Some(b)) => {
                let (left, right) = (self.get(a)?, self.get(b)?);
                let (mut i, mut j) = (0, 0);
                while i < left.len() || j < right.len() {
                    let order = match (left.get(i), right.get(j)) {
                        (Some(l), Some(r)) => git_order(l, r),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        _ => std::cmp::Ordering::Greater,
                    };
                    match order {
                        std::cmp::Ordering::Less => {
                            self.entry_changed(Some(&left[i]), None, prefix, out)?;
                            i += 1;
                        }
                        std::cmp::Ordering::Greater => {
                            self.entry_changed(None, Some(&right[j]), prefix, out)?;
                            j += 1;
                        }
                        std::cmp::Ordering::Equal => {
                            let (l, r) = (&left[i], &right[j]);
                            if l.oid != r.oid || l.mode != r.mode {
                                self.entry_changed(Some(l), Some(r), prefix, out)?;
                            }
                            i += 1;
                            j += 1;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// One name present on either side with different content: a subtree is compared further, a
    /// blob is one path (a blob replaced by a tree of the same name is both).
    fn entry_changed(
        &mut self,
        old: Option<&Entry>,
        new: Option<&Entry>,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), IngestError> {
        let name = old.or(new).map(|e| e.name.as_slice()).unwrap_or_default();
        let path = join(prefix, name);
        let old_tree = old.filter(|e| e.is_tree).map(|e| &e.oid);
        let new_tree = new.filter(|e| e.is_tree).map(|e| &e.oid);
        let blob = old.is_some_and(|e| !e.is_tree) || new.is_some_and(|e| !e.is_tree);
        if blob {
            out.push(path.clone());
        }
        if old_tree.is_some() || new_tree.is_some() {
            self.diff(old_tree, new_tree, &path, out)?;
        }
        Ok(())
    }
}

/// Git's tree order: names compared bytewise, a tree's name as if it ended in `/`.
fn git_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let end = |e: &Entry, at: usize| -> Option<u8> {
        e.name
            .get(at)
            .copied()
            .or(if e.is_tree && at == e.name.len() {
                Some(b'/')
            } else {
                None
            })
    };
    let common = a.name.len().min(b.name.len());
    match a.name[..common].cmp(&b.name[..common]) {
        std::cmp::Ordering::Equal => end(a, common).cmp(&end(b, common)),
        other => other,
    }
}

fn join(prefix: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if prefix.is_empty() {
        name.into_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

/// The paths each of `which` (indexes into `history.commits`) touched, sorted, in `which`'s
/// order: computed on `threads` threads, each over a contiguous run of `which` (neighbours share
/// trees), each opening the repository itself.
pub fn touched_paths(
    path: &Path,
    history: &History,
    which: &[u32],
    threads: usize,
) -> Result<Vec<Vec<String>>, IngestError> {
    let threads = threads.clamp(1, 64).min(which.len().max(1));
    let chunk = which.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<Vec<String>>, IngestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = which
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<Vec<String>>, IngestError> {
                    let mut trees = Trees {
                        repo: open(path)?,
                        path: path.to_owned(),
                        buffer: Vec::new(),
                        cache: HashMap::new(),
                    };
                    let mut out = Vec::with_capacity(part.len());
                    for &at in part {
                        let commit = &history.commits[at as usize];
                        let parent = commit
                            .parents
                            .first()
                            .map(|&p| &history.commits[p as usize].tree);
                        let mut paths = Vec::new();
                        trees.diff(parent, Some(&commit.tree), "", &mut paths)?;
                        paths.sort();
                        paths.dedup();
                        out.push(paths);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(failed(path, "reading trees", "a reader thread panicked"))
                })
            })
            .collect()
    });
    let mut all = Vec::with_capacity(which.len());
    for part in results {
        all.extend(part?);
    }
    Ok(all)
}
