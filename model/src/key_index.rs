//! An ingest's index of the rows a canonical table holds: a hash of each row's key and one of its
//! content, sorted by key. A large ingest arrives in chunks; without the index every chunk's
//! upsert scans the whole table to learn which of its keys exist (a cost that grows with the
//! table, chunk after chunk). With it, one scan builds the index and each chunk is split in
//! memory: keys the table lacks are appended at once, rows identical to the table's are dropped,
//! and only the rest (keys whose content differs, or a hash two keys share) go through the merge
//! by key against the table.
//!
//! A hash never decides alone that a key is new or a row changed wrongly: a key hash the index
//! lacks is a key the table lacks; a row is dropped as identical only when both its key hash and
//! its content hash (64 bits each) match the table's, and a key hash two rows share is marked so
//! that its rows always take the merge. 16 bytes per row of the table, for the ingest's length.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use deltalake::datafusion::common::hash_utils::{QualityRandomState, create_hashes};
use deltalake::datafusion::error::DataFusionError;

/// What the index knows of a row's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The table lacks the key.
    New,
    /// The table holds the key with this very content.
    Same,
    /// The table holds the key with other content, or the hash is shared: merge by key.
    Merge,
}

/// Content hash of a key hash two rows share: such rows always merge.
const SHARED: u64 = u64::MAX;

/// Hash words for a null and for each column (so that columns and nulls never trade places).
const NULL_WORD: u64 = 0x6a09_e667_f3bc_c909;
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// Rows of a table by (key hash, content hash), sorted by key hash.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    entries: Vec<(u64, u64)>,
}

impl KeyIndex {
    /// Rows held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// What the table holds of a row with these hashes.
    pub(crate) fn seen(&self, key: u64, content: u64) -> Seen {
        match self.entries.binary_search_by_key(&key, |(k, _)| *k) {
            Err(_) => Seen::New,
            Ok(i) if self.entries[i].1 == content && content != SHARED => Seen::Same,
            Ok(_) => Seen::Merge,
        }
    }

    /// Records written rows. `updated`: rows of keys the table held (their content replaces
    /// the old); else rows of keys it lacked (a key hash already present is then shared).
    pub(crate) fn record(&mut self, mut rows: Vec<(u64, u64)>, updated: bool) {
        if rows.is_empty() {
            return;
        }
        rows.sort_unstable_by_key(|(k, _)| *k);
        let rows = shared_marked(rows);
        // Merged in place from the back, so that the index is never held twice (a large
        // allocation grows where it lies).
        let held = self.entries.len();
        self.entries.reserve_exact(rows.len());
        self.entries.resize(held + rows.len(), (0, 0));
        let entries = &mut self.entries;
        let (mut old, mut write) = (held, held + rows.len());
        for new in rows.into_iter().rev() {
            while old > 0 && entries[old - 1].0 > new.0 {
                write -= 1;
                old -= 1;
                entries[write] = entries[old];
            }
            write -= 1;
            entries[write] = if old > 0 && entries[old - 1].0 == new.0 {
                old -= 1;
                let held = entries[old].1;
                let content = if updated && held != SHARED {
                    new.1
                } else {
                    SHARED
                };
                (new.0, content)
            } else {
                new
            };
        }
        // Keys held on both sides leave a gap between the untouched front and the merged rest.
        entries.drain(old..write);
    }

    /// The index of rows given in any order (a table's scan).
    pub(crate) fn from_rows(mut rows: Vec<(u64, u64)>) -> Self {
        rows.sort_unstable_by_key(|(k, _)| *k);
        KeyIndex {
            entries: shared_marked(rows),
        }
    }
}

/// Sorted rows with each key hash once, a repeated one marked [`SHARED`].
fn shared_marked(rows: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(rows.len());
    for (key, content) in rows {
        match out.last_mut() {
            Some(last) if last.0 == key => last.1 = SHARED,
            _ => out.push((key, content)),
        }
    }
    out
}

/// The (key hash, content hash) of each row: `key` and `content` are column indices.
pub(crate) fn row_hashes(
    batch: &RecordBatch,
    key: &[usize],
    content: &[usize],
) -> Result<Vec<(u64, u64)>, DataFusionError> {
    let keys = columns_hash(batch, key)?;
    let contents = columns_hash(batch, content)?;
    Ok(keys.into_iter().zip(contents).collect())
}

/// One hash per row over the columns, nulls and list lengths included.
fn columns_hash(batch: &RecordBatch, columns: &[usize]) -> Result<Vec<u64>, DataFusionError> {
    let rows = batch.num_rows();
    let state = QualityRandomState::with_seed(0x0d0a_c057);
    let mut out = vec![0u64; rows];
    let mut buffer = vec![0u64; rows];
    for (n, &i) in columns.iter().enumerate() {
        let column: &ArrayRef = batch.column(i);
        buffer.fill(0);
        create_hashes([column], &state, &mut buffer)?;
        let nulls = column.logical_nulls();
        let lengths = lengths(column);
        for row in 0..rows {
            let word = if nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
                NULL_WORD
            } else {
                // The hash of an empty list is that of a null: its length tells them apart.
                buffer[row] ^ lengths.as_ref().map_or(0, |l| l(row)).wrapping_mul(MIX)
            };
            out[row] = fold(out[row], word ^ (n as u64 + 1).wrapping_mul(NULL_WORD));
        }
    }
    Ok(out)
}

/// For list and map columns, each row's entry count plus one.
fn lengths(column: &ArrayRef) -> Option<Box<dyn Fn(usize) -> u64 + '_>> {
    match column.data_type() {
        DataType::List(_) => {
            let list = column.as_list::<i32>();
            Some(Box::new(move |row| list.value_length(row) as u64 + 1))
        }
        DataType::LargeList(_) => {
            let list = column.as_list::<i64>();
            Some(Box::new(move |row| list.value_length(row) as u64 + 1))
        }
        DataType::Map(_, _) => {
            let map = column.as_map();
            Some(Box::new(move |row| {
                let offsets = map.value_offsets();
                (offsets[row + 1] - offsets[row]) as u64 + 1
            }))
        }
        _ => None,
    }
}

/// Folds a word into a running hash (order matters).
fn fold(hash: u64, word: u64) -> u64 {
    let x = (hash.rotate_left(27) ^ word).wrapping_mul(MIX);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ListBuilder, StringArray, StringBuilder};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn strings(name: &str, values: &[Option<&str>]) -> (Field, ArrayRef) {
        (
            Field::new(name, DataType::Utf8, true),
            Arc::new(StringArray::from(values.to_vec())),
        )
    }

    fn batch(columns: Vec<(Field, ArrayRef)>) -> RecordBatch {
        let (fields, arrays): (Vec<_>, Vec<_>) = columns.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("columns agree")
    }

    #[test]
    fn nulls_and_values_in_other_columns_hash_apart() {
        // Without a word per null, (null, null, x) and (null, x, null) would hash alike.
        let rows = batch(vec![
            strings("a", &[None, None, Some("x")]),
            strings("b", &[None, Some("x"), None]),
            strings("c", &[Some("x"), None, None]),
        ]);
        let hashes = columns_hash(&rows, &[0, 1, 2]).expect("hashes");
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[1], hashes[2]);
        assert_ne!(hashes[0], hashes[2]);
        let again = columns_hash(&rows, &[0, 1, 2]).expect("hashes");
        assert_eq!(hashes, again);
    }

    #[test]
    fn an_empty_list_and_a_null_list_hash_apart() {
        let mut lists = ListBuilder::new(StringBuilder::new());
        lists.append(true);
        lists.append(false);
        lists.values().append_value("");
        lists.append(true);
        let array: ArrayRef = Arc::new(lists.finish());
        let field = Field::new("files", array.data_type().clone(), true);
        let rows = batch(vec![(field, array)]);
        let hashes = columns_hash(&rows, &[0]).expect("hashes");
        assert_ne!(hashes[0], hashes[1], "[] and null");
        assert_ne!(hashes[0], hashes[2], "[] and [\"\"]");
        assert_ne!(hashes[1], hashes[2], "null and [\"\"]");
    }

    #[test]
    fn merging_in_place_keeps_every_key_once_in_order() {
        // Against a map, over rounds of new and updated rows that interleave the held ones.
        let mut index = KeyIndex::default();
        let mut model = std::collections::BTreeMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..50 {
            let updated = round % 3 == 2;
            let mut rows = Vec::new();
            for _ in 0..(next() % 40) {
                let key = next() % 200;
                if model.contains_key(&key) == updated && !rows.iter().any(|(k, _)| *k == key) {
                    rows.push((key, next() % 1000));
                }
            }
            for (key, content) in &rows {
                model.insert(*key, *content);
            }
            index.record(rows, updated);
            let held: Vec<(u64, u64)> = model.iter().map(|(k, c)| (*k, *c)).collect();
            assert_eq!(index.entries, held, "round {round}");
        }
        assert!(index.len() > 50);
    }

    #[test]
    fn the_index_tells_new_same_and_changed_rows_and_marks_shared_hashes() {
        let mut index = KeyIndex::from_rows(vec![(5, 50), (1, 10), (9, 90)]);
        assert_eq!(index.len(), 3);
        assert_eq!(index.seen(1, 10), Seen::Same);
        assert_eq!(index.seen(1, 11), Seen::Merge);
        assert_eq!(index.seen(2, 10), Seen::New);
        index.record(vec![(1, 11)], true);
        assert_eq!(
            index.seen(1, 11),
            Seen::Same,
            "an update replaces the content"
        );
        index.record(vec![(3, 30), (5, 55)], false);
        assert_eq!(index.seen(3, 30), Seen::Same);
        assert_eq!(
            index.seen(5, 50),
            Seen::Merge,
            "a new key on a held hash shares it"
        );
        assert_eq!(index.seen(5, 55), Seen::Merge);
        index.record(vec![(5, 56)], true);
        assert_eq!(index.seen(5, 56), Seen::Merge, "a shared hash stays shared");
        let twice = KeyIndex::from_rows(vec![(7, 1), (7, 2)]);
        assert_eq!(twice.len(), 1);
        assert_eq!(twice.seen(7, 1), Seen::Merge);
        assert_eq!(index.len(), 4);
    }
}
