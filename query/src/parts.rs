//! The refresh in parts: the per-service DORA derived tables of a large lake computed a group of
//! services at a time, so that the refresh's memory is bounded by a group rather than by the lake.
//!
//! Every per-row view partitions by service, so a group's rows are computed, as the incremental
//! refresh computes a few services' rows ([`crate::incremental`]), from the canonical rows those
//! services read alone. Those rows are found for every group at once: one pass over each event
//! table marks each row with the groups that read it (a bit set, so at most [`MAX_PARTS`] groups)
//! and appends it to each such group's Arrow IPC file in a temporary folder; a group then loads its
//! own files. The lake is read once whatever the number of groups (reading it once per group was
//! 12 times slower on the large sample organisation).
//!
//! Which group reads a row (the rules of the incremental refresh's restricted session):
//! - a deployment: its service's group; one that names no service, the groups of the services
//!   owning its repo (whole or by path), and `unattributed`'s when no service owns the whole repo
//!   (or it has none); the group of an incident that names it (by id or deployment group), every
//!   group for an incident of no service; and each row of a deployment across repos
//!   (`deployment_group`) every group one of its rows is in;
//! - a deployment–change link: the groups of its deployment; a change: the groups of its links;
//! - an incident (few, kept in memory): its service's group, every group when it has none, and the
//!   groups of the deployment it names.
//!
//! Links and changes are marked through 64-bit hashes of their deployment and change ids (16 bytes
//! per row in memory rather than the ids); a hash two ids share only adds a row to a group that
//! does not read it, and each group drops those when it loads its files (links whose deployment is
//! not among its deployments, changes none of its links names), so the rows are exact.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::prelude::{SessionContext, col};
use futures::StreamExt;
use model::Table;

use crate::engine::{Engine, QueryError, Refreshed};
use crate::incremental::{GRID, PER_SERVICE, UNATTRIBUTED, collect, conform, is_in};

/// At most this many groups: the groups reading a row are one word's bits. (Groups grow beyond
/// the requested size when a lake has more than this many times as many deployments.)
pub const MAX_PARTS: usize = 64;

/// The groups reading a row, one bit each.
type Parts = u64;

impl Engine {
    /// Refreshes the stale per-service DORA derived tables (and then `dora_period_grid`) in
    /// parts, so that memory is bounded by a part rather than by the lake: the services, in name
    /// order, packed into groups of about `batch_deployments` deployments each (see
    /// [`crate::parts`]), the first group's rows written over the table and the others appended,
    /// under a stamp no reader takes for fresh, and the table stamped last. `Ok(None)` when the
    /// lake is small enough for one part, when no per-service table is stale, or when another
    /// writer changed a table meanwhile: then nothing is stamped fresh and the caller refreshes
    /// whole.
    pub(crate) async fn refresh_in_parts(
        &self,
        batch_deployments: usize,
    ) -> Result<Option<Vec<Refreshed>>, QueryError> {
        let Some(lake) = self.lake() else {
            return Ok(None);
        };
        let jobs: Vec<(&str, &str, SchemaRef)> = self
            .derived()
            .iter()
            .filter(|v| PER_SERVICE.contains(&v.name.as_str()))
            .filter_map(|v| Some((v.name.as_str(), v.stamp.as_str(), v.live.as_ref()?.schema())))
            .collect();
        if jobs.is_empty() {
            return Ok(None);
        }
        let groups = self.service_groups(batch_deployments).await?;
        if groups.len() < 2 {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let split = self.split_by_group(&groups).await?;
        tracing::debug!(
            groups = groups.len(),
            seconds = started.elapsed().as_secs_f64(),
            "refresh in parts: event rows split by group"
        );
        let mut versions: HashMap<&str, u64> = HashMap::new();
        let mut rows: HashMap<&str, usize> = HashMap::new();
        for (i, services) in groups.iter().enumerate() {
            let restricted = Engine::with_tables(
                self.group_session(&split, i, services).await?,
                self.config(),
            )
            .await?;
            let in_services = is_in("service", services);
            for (name, stamp, schema) in &jobs {
                let mut wanted = in_services.clone();
                if *name == "dora_incidents" && i == 0 {
                    // Incidents with no service: read by every group, kept from the first.
                    wanted = wanted.or(col("service").is_null());
                }
                let frame = restricted.context().table(*name).await?.filter(wanted)?;
                let batches = conform(schema, frame.collect().await?)?;
                *rows.entry(name).or_default() +=
                    batches.iter().map(RecordBatch::num_rows).sum::<usize>();
                let partial = format!("partial {stamp}");
                let version = match versions.get(name) {
                    None => Some(
                        lake.write_derived(name, Arc::clone(schema), batches, &partial)
                            .await?,
                    ),
                    Some(&expected) => {
                        lake.append_derived(name, Arc::clone(schema), batches, &partial, expected)
                            .await?
                    }
                };
                let Some(version) = version else {
                    tracing::info!(
                        table = name,
                        "a derived table changed during the refresh in parts; refreshing whole"
                    );
                    return Ok(None);
                };
                versions.insert(name, version);
            }
            drop(restricted);
            model::memory::release_freed();
            tracing::debug!(
                part = i + 1,
                of = groups.len(),
                services = services.len(),
                seconds = started.elapsed().as_secs_f64(),
                "refresh in parts"
            );
        }
        drop(split);
        let mut done = Vec::new();
        for (name, stamp, _) in &jobs {
            let Some(version) = lake.restamp_derived(name, stamp, versions[name]).await? else {
                return Ok(None);
            };
            done.push(Refreshed {
                name: (*name).to_owned(),
                rows: rows[name],
                version,
                seconds: started.elapsed().as_secs_f64(),
                incremental: false,
            });
        }
        if let Some(grid) = self.derived().iter().find(|v| v.name == GRID)
            && let Some(live) = &grid.live
        {
            let step = std::time::Instant::now();
            let batches = conform(&live.schema(), self.grid_from_derived().await?)?;
            let rows = batches.iter().map(RecordBatch::num_rows).sum();
            let version = lake
                .write_derived(GRID, live.schema(), batches, &grid.stamp)
                .await?;
            done.push(Refreshed {
                name: GRID.to_owned(),
                rows,
                version,
                seconds: step.elapsed().as_secs_f64(),
                incremental: false,
            });
        }
        Ok(Some(done))
    }

    /// Every service a per-row view can name (the config's, those deployments and incidents
    /// name, and `unattributed`), in name order, packed into groups of about `batch_deployments`
    /// deployments (a service with more is a group of its own), and into at most [`MAX_PARTS`]
    /// groups (larger ones when needed).
    async fn service_groups(
        &self,
        batch_deployments: usize,
    ) -> Result<Vec<BTreeSet<String>>, QueryError> {
        let counts = collect(
            self.context(),
            "SELECT CAST(service AS VARCHAR) AS service, CAST(count(*) AS BIGINT) AS n FROM deployments \
             WHERE service IS NOT NULL GROUP BY service \
             UNION ALL SELECT DISTINCT CAST(service AS VARCHAR), CAST(0 AS BIGINT) FROM incidents \
             WHERE service IS NOT NULL",
        )
        .await?;
        let mut weights: BTreeMap<String, usize> = BTreeMap::new();
        for batch in &counts {
            let cast = |i: usize, to: &DataType| {
                arrow::compute::cast(batch.column(i), to)
                    .map_err(|e| QueryError::Views(format!("service counts: {e}")))
            };
            let (names, n) = (cast(0, &DataType::Utf8)?, cast(1, &DataType::Int64)?);
            let (Some(names), Some(n)) = (
                names.as_string_opt::<i32>(),
                n.as_primitive_opt::<arrow::datatypes::Int64Type>(),
            ) else {
                return Err(QueryError::Views(
                    "service counts of unexpected types".into(),
                ));
            };
            for row in 0..batch.num_rows() {
                *weights.entry(names.value(row).to_owned()).or_default() +=
                    usize::try_from(n.value(row)).unwrap_or(0);
            }
        }
        // Deployments that name no service count for the services owning their repo; in
        // weight they are left out (the groups are a memory bound, not a partition of rows).
        for service in &self.config().services {
            weights.entry(service.name.clone()).or_default();
        }
        weights.entry(UNATTRIBUTED.to_owned()).or_default();
        // Larger groups when the lake needs more than MAX_PARTS of the size asked for (packing
        // whole services leaves groups short of it, so the count is checked, not estimated).
        let mut size = batch_deployments.max(1);
        loop {
            let groups = pack(&weights, size);
            if groups.len() <= MAX_PARTS {
                return Ok(groups);
            }
            size += size / 4 + 1;
        }
    }

    /// The event rows each group reads, written to its files (see [`crate::parts`]).
    async fn split_by_group(&self, groups: &[BTreeSet<String>]) -> Result<Split, QueryError> {
        let folder = tempfile::Builder::new()
            .prefix("doracost-refresh-")
            .tempdir()
            .map_err(|e| spill_error(&std::env::temp_dir(), e))?;
        let split = Split {
            folder,
            incidents: Vec::new(),
            groups: groups.len(),
        };
        let all: Parts = if groups.len() >= MAX_PARTS {
            Parts::MAX
        } else {
            (1 << groups.len()) - 1
        };
        let mut of_service: HashMap<&str, Parts> = HashMap::new();
        for (i, group) in groups.iter().enumerate() {
            for service in group {
                *of_service.entry(service.as_str()).or_default() |= 1 << i;
            }
        }
        let config = self.config();
        // The groups of the services owning a repo (whole or by path), and the repos owned whole.
        let mut of_repo: HashMap<&str, Parts> = HashMap::new();
        let mut owned_whole: HashSet<&str> = HashSet::new();
        for service in &config.services {
            let bits = of_service.get(service.name.as_str()).copied().unwrap_or(0);
            for repo in &service.repos {
                *of_repo.entry(repo.as_str()).or_default() |= bits;
                if service.paths.is_empty() {
                    owned_whole.insert(repo.as_str());
                }
            }
        }
        let unattributed = of_service.get(UNATTRIBUTED).copied().unwrap_or(0);

        // Incidents: every one kept (they are few); the deployments they name are read by the
        // incident's group, or by every group when it has no service.
        let incidents = self.all_rows(Table::Incidents).await?;
        let mut named: HashMap<String, Parts> = HashMap::new();
        for batch in &incidents {
            let (service, cause) = (
                text(batch, "service")?,
                text(batch, "caused_by_deployment_id")?,
            );
            for row in 0..batch.num_rows() {
                if !cause.is_valid(row) {
                    continue;
                }
                let bits = if service.is_valid(row) {
                    of_service.get(service.value(row)).copied().unwrap_or(0)
                } else {
                    all
                };
                *named.entry(cause.value(row).to_owned()).or_default() |= bits;
            }
        }
        // A deployment's own groups: its service's, its repo's owners', the incidents' naming it.
        let own = |service: &StringArray,
                   repo: &StringArray,
                   id: &StringArray,
                   group: &StringArray,
                   row: usize| {
            let mut bits = if service.is_valid(row) {
                of_service.get(service.value(row)).copied().unwrap_or(0)
            } else if repo.is_valid(row) {
                let owners = of_repo.get(repo.value(row)).copied().unwrap_or(0);
                if owned_whole.contains(repo.value(row)) {
                    owners
                } else {
                    owners | unattributed
                }
            } else {
                unattributed
            };
            bits |= named.get(id.value(row)).copied().unwrap_or(0);
            if group.is_valid(row) {
                bits |= named.get(group.value(row)).copied().unwrap_or(0);
            }
            bits
        };

        // Pass 1: a deployment across repos is read by every group one of its rows is in.
        let mut of_group: HashMap<String, Parts> = HashMap::new();
        let mut stream = self
            .context()
            .table(Table::Deployments.name())
            .await?
            .select_columns(&["deployment_id", "service", "repo", "deployment_group"])?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            let (id, service, repo, group) = (
                text(&batch, "deployment_id")?,
                text(&batch, "service")?,
                text(&batch, "repo")?,
                text(&batch, "deployment_group")?,
            );
            for row in 0..batch.num_rows() {
                if group.is_valid(row) {
                    let bits = own(&service, &repo, &id, &group, row);
                    *of_group.entry(group.value(row).to_owned()).or_default() |= bits;
                }
            }
        }
        drop(stream);

        // Pass 2: every deployment row to its groups' files; each id's groups kept by hash for
        // the links.
        let hasher =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        let mut deployment_parts: HashMap<u64, Parts> = HashMap::new();
        self.split_table(&split, Table::Deployments, |batch| {
            let (id, service, repo, group) = (
                text(batch, "deployment_id")?,
                text(batch, "service")?,
                text(batch, "repo")?,
                text(batch, "deployment_group")?,
            );
            Ok((0..batch.num_rows())
                .map(|row| {
                    let key = if group.is_valid(row) {
                        group.value(row)
                    } else {
                        id.value(row)
                    };
                    let bits = own(&service, &repo, &id, &group, row)
                        | of_group.get(key).copied().unwrap_or(0);
                    if bits != 0 {
                        *deployment_parts
                            .entry(hasher.hash_one(id.value(row)))
                            .or_default() |= bits;
                    }
                    bits
                })
                .collect())
        })
        .await?;
        drop((of_group, named));

        // The links of those deployments; each change's groups kept by hash, sorted, for the
        // changes.
        // Reserved whole (a count from the files' statistics): grown by doubling, the vector
        // and its copy made the split peak hundreds of megabytes higher.
        let links = self
            .context()
            .table(Table::DeploymentChanges.name())
            .await?
            .count()
            .await?;
        let mut change_parts: Vec<(u64, Parts)> = Vec::with_capacity(links);
        self.split_table(&split, Table::DeploymentChanges, |batch| {
            let (deployment, change) = (text(batch, "deployment_id")?, text(batch, "change_id")?);
            Ok((0..batch.num_rows())
                .map(|row| {
                    let bits = deployment_parts
                        .get(&hasher.hash_one(deployment.value(row)))
                        .copied()
                        .unwrap_or(0);
                    if bits != 0 {
                        change_parts.push((hasher.hash_one(change.value(row)), bits));
                    }
                    bits
                })
                .collect())
        })
        .await?;
        drop(deployment_parts);
        change_parts.sort_unstable_by_key(|(hash, _)| *hash);
        change_parts.dedup_by(|next, kept| {
            next.0 == kept.0 && {
                kept.1 |= next.1;
                true
            }
        });

        self.split_table(&split, Table::Changes, |batch| {
            let change = text(batch, "change_id")?;
            Ok((0..batch.num_rows())
                .map(|row| {
                    let hash = hasher.hash_one(change.value(row));
                    change_parts
                        .binary_search_by_key(&hash, |(h, _)| *h)
                        .map_or(0, |i| change_parts[i].1)
                })
                .collect())
        })
        .await?;
        drop(change_parts);
        model::memory::release_freed();
        Ok(Split { incidents, ..split })
    }

    /// Streams lake table `table` (in its canonical schema) into `split`'s files: each row to
    /// the groups `groups_of` gives it.
    async fn split_table(
        &self,
        split: &Split,
        table: Table,
        mut groups_of: impl FnMut(&RecordBatch) -> Result<Vec<Parts>, QueryError>,
    ) -> Result<(), QueryError> {
        let mut files = split.writers(table);
        let mut stream = self
            .context()
            .table(table.name())
            .await?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            let batch = conformed(table, batch?)?;
            let bits = groups_of(&batch)?;
            files.write(split, &batch, &bits)?;
        }
        files.finish(split)
    }

    /// Every row of lake table `table`, in its canonical schema.
    async fn all_rows(&self, table: Table) -> Result<Vec<RecordBatch>, QueryError> {
        let batches = self.context().table(table.name()).await?.collect().await?;
        conform(&table.schema(), batches)
    }

    /// A session whose event tables hold the rows group `index` (`services`) reads, from its
    /// files, and whose other lake tables are the engine's.
    async fn group_session(
        &self,
        split: &Split,
        index: usize,
        services: &BTreeSet<String>,
    ) -> Result<SessionContext, QueryError> {
        let deployments = split.read(Table::Deployments, index)?;
        // Exact from here on: a link only of this group's deployments, a change only of its
        // links, the incidents of its services, of none, or naming its deployments.
        // The group's deployment rows (`parts`, what links name) and, with their deployment
        // groups, every id an incident may name (`ids`).
        let mut parts: HashSet<String> = HashSet::new();
        let mut groups: HashSet<String> = HashSet::new();
        for batch in &deployments {
            parts.extend(
                text(batch, "deployment_id")?
                    .iter()
                    .flatten()
                    .map(str::to_owned),
            );
            groups.extend(
                text(batch, "deployment_group")?
                    .iter()
                    .flatten()
                    .map(str::to_owned),
            );
        }
        let named = |id: &str| parts.contains(id) || groups.contains(id);
        let links = keep(split.read(Table::DeploymentChanges, index)?, |batch| {
            let deployment = text(batch, "deployment_id")?;
            Ok(deployment
                .iter()
                .map(|d| Some(d.is_some_and(|d| parts.contains(d))))
                .collect())
        })?;
        let mut shipped: HashSet<String> = HashSet::new();
        for batch in &links {
            shipped.extend(
                text(batch, "change_id")?
                    .iter()
                    .flatten()
                    .map(str::to_owned),
            );
        }
        let changes = keep(split.read(Table::Changes, index)?, |batch| {
            let change = text(batch, "change_id")?;
            Ok(change
                .iter()
                .map(|c| Some(c.is_some_and(|c| shipped.contains(c))))
                .collect())
        })?;
        let incidents = keep(split.incidents.clone(), |batch| {
            let (service, cause) = (
                text(batch, "service")?,
                text(batch, "caused_by_deployment_id")?,
            );
            Ok((0..batch.num_rows())
                .map(|row| {
                    Some(
                        !service.is_valid(row)
                            || services.contains(service.value(row))
                            || (cause.is_valid(row) && named(cause.value(row))),
                    )
                })
                .collect())
        })?;
        self.session_over([deployments, links, changes, incidents])
            .await
    }
}

/// The services (name → deployments) in name order, packed into groups of at most `size`
/// deployments (a service with more is a group of its own).
fn pack(weights: &BTreeMap<String, usize>, size: usize) -> Vec<BTreeSet<String>> {
    let mut groups = vec![BTreeSet::new()];
    let mut weight = 0;
    for (service, &n) in weights {
        if weight > 0 && weight + n > size {
            groups.push(BTreeSet::new());
            weight = 0;
        }
        weight += n;
        if let Some(group) = groups.last_mut() {
            group.insert(service.clone());
        }
    }
    groups
}

/// The event rows split by group: each group's deployments, links and changes in Arrow IPC files
/// of a temporary folder (deleted with it), and every incident.
struct Split {
    folder: tempfile::TempDir,
    incidents: Vec<RecordBatch>,
    groups: usize,
}

impl Split {
    fn path(&self, table: Table, group: usize) -> PathBuf {
        self.folder
            .path()
            .join(format!("{}-{group}.arrows", table.name()))
    }

    /// One lazily created file per group for `table`'s rows.
    fn writers(&self, table: Table) -> GroupFiles {
        GroupFiles {
            table,
            files: (0..self.groups).map(|_| None).collect(),
        }
    }

    /// Group `group`'s rows of `table` (none when it has no file).
    fn read(&self, table: Table, group: usize) -> Result<Vec<RecordBatch>, QueryError> {
        let path = self.path(table, group);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(spill_error(&path, e)),
        };
        StreamReader::try_new(BufReader::new(file), None)
            .and_then(|reader| reader.collect::<Result<Vec<_>, _>>())
            .map_err(|e| spill_error(&path, e))
    }
}

/// The files of one table's rows, a file per group.
struct GroupFiles {
    table: Table,
    files: Vec<Option<StreamWriter<BufWriter<File>>>>,
}

impl GroupFiles {
    /// Appends each row of `batch` to the files of the groups its bits name.
    fn write(
        &mut self,
        split: &Split,
        batch: &RecordBatch,
        bits: &[Parts],
    ) -> Result<(), QueryError> {
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); self.files.len()];
        for (row, &row_bits) in bits.iter().enumerate() {
            let mut rest = row_bits;
            while rest != 0 {
                let group = rest.trailing_zeros() as usize;
                if let (Some(group_rows), Ok(row)) = (rows.get_mut(group), u32::try_from(row)) {
                    group_rows.push(row);
                }
                rest &= rest - 1;
            }
        }
        for (group, group_rows) in rows.into_iter().enumerate() {
            if group_rows.is_empty() {
                continue;
            }
            let path = split.path(self.table, group);
            let picked = arrow::compute::take_record_batch(batch, &UInt32Array::from(group_rows))
                .map_err(|e| spill_error(&path, e))?;
            let slot = &mut self.files[group];
            if slot.is_none() {
                let file = File::create(&path).map_err(|e| spill_error(&path, e))?;
                *slot = Some(
                    StreamWriter::try_new(BufWriter::new(file), &batch.schema())
                        .map_err(|e| spill_error(&path, e))?,
                );
            }
            if let Some(writer) = slot {
                writer.write(&picked).map_err(|e| spill_error(&path, e))?;
            }
        }
        Ok(())
    }

    /// Ends every file (a stream a reader can read to its end).
    fn finish(self, split: &Split) -> Result<(), QueryError> {
        for (group, slot) in self.files.into_iter().enumerate() {
            if let Some(mut writer) = slot {
                let path = split.path(self.table, group);
                writer.finish().map_err(|e| spill_error(&path, e))?;
                writer
                    .into_inner()
                    .and_then(|mut out| std::io::Write::flush(&mut out).map_err(Into::into))
                    .map_err(|e| spill_error(&path, e))?;
            }
        }
        Ok(())
    }
}

/// `batch` in `table`'s canonical schema.
fn conformed(table: Table, batch: RecordBatch) -> Result<RecordBatch, QueryError> {
    Ok(conform(&table.schema(), vec![batch])?
        .pop()
        .unwrap_or_else(|| RecordBatch::new_empty(table.schema())))
}

/// Column `name` of `batch` as plain strings.
fn text(batch: &RecordBatch, name: &str) -> Result<StringArray, QueryError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::Views(format!("refresh in parts: no column `{name}`")))?;
    let cast =
        arrow::compute::cast(column, &DataType::Utf8).map_err(|e| QueryError::Sql(e.into()))?;
    Ok(cast.as_string::<i32>().clone())
}

/// The rows of `batches` `wanted` selects.
fn keep(
    batches: Vec<RecordBatch>,
    wanted: impl Fn(&RecordBatch) -> Result<BooleanArray, QueryError>,
) -> Result<Vec<RecordBatch>, QueryError> {
    batches
        .iter()
        .map(|batch| {
            arrow::compute::filter_record_batch(batch, &wanted(batch)?)
                .map_err(|e| QueryError::Sql(e.into()))
        })
        .collect()
}

fn spill_error(path: &std::path::Path, error: impl std::fmt::Display) -> QueryError {
    QueryError::Spill {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}
