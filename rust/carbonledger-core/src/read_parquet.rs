//! Reading power samples from Parquet files in Rust: the columns the engine
//! needs, row groups decoded in parallel and handed over in file order, so
//! that no batch crosses into Python and decoding and accounting share the
//! cores without contention.
//!
//! [`ParquetScan::open`] reads every footer first (the schema check of one
//! source, SPEC 2, and the row count for progress); the footers are kept
//! (row-group statistics, for the read window's pruning).
//! [`decode`] then decodes the scans of a run's Parquet sources, in turn:
//! each worker takes the next row group and sends its batches down that row
//! group's own bounded channel;
//! the consumer drains the channels in order. A worker claims a row group
//! only within a window of the one being drained, and a channel holds at
//! most about [`AHEAD_ROWS`] rows, so memory stays bounded by about
//! `workers x AHEAD_ROWS` rows whatever the size and number of the files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::{Buf, Bytes};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::reader::{ChunkReader, Length};

use crate::error::{panic_message, Error, Result};

/// The power columns (SPEC 2), in the order the engine's schema lists them.
/// The columns the engine reads (the value column and, when the samples
/// carry it, utilization); the others are not decoded.
const POWER_COLUMNS: [&str; 6] = [
    "device_id",
    "ts",
    "power_w",
    "energy_j",
    "utilization",
    "utilization_pct",
];
const VALUE_COLUMNS: [&str; 2] = ["power_w", "energy_j"];
/// Decoded rows a row group's channel may hold ahead of the consumer: a
/// whole row group of the common size (2^20 rows, about 20 MB of power
/// samples), so that a worker decoding the next row group does not wait
/// for the consumer to finish this one. At two batches, workers waited
/// and the 10^8-sample run used 1.6 of 2 cores.
pub const AHEAD_ROWS: usize = 1 << 20;

/// The batches of `batch_rows` rows a channel holds: [`AHEAD_ROWS`], within
/// bounds (a channel allocates its slots up front).
fn channel_depth(batch_rows: usize) -> usize {
    AHEAD_ROWS.div_ceil(batch_rows.max(1)).clamp(2, 64)
}
/// See [`ParquetScan::with_stall_timeout`].
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// One file's footer and how to read it.
#[derive(Debug)]
struct ScanFile {
    path: PathBuf,
    meta: ArrowReaderMetadata,
    projection: ProjectionMask,
    /// The batch schema with carbonledger's column names, in reading order.
    schema: SchemaRef,
    /// Canonical power columns present, for the one-schema check.
    power_columns: Vec<&'static str>,
    /// The `ts` column's leaf in the Parquet schema and the nanoseconds in
    /// one unit of its values, where its statistics can bound the times of
    /// a row group (an INT64 timestamp); `None` otherwise.
    ts_stats: Option<(usize, i64)>,
}

/// The files of one power source, opened (footers read and checked).
#[derive(Debug)]
pub struct ParquetScan {
    files: Vec<ScanFile>,
    batch_rows: usize,
    /// How long the engine waits for the next batch of a row group before
    /// calling it stalled (see [`ParquetScan::with_stall_timeout`]).
    stall_timeout: Duration,
}

/// A batch of samples, the index of the scan and of the file in it that it
/// came from; or the error of that scan.
pub type ScanBatch = (usize, Result<(usize, RecordBatch)>);

impl ParquetScan {
    /// Read the footers of `paths` (in this order). `rename` maps
    /// carbonledger's column names to the user's (`{"ts": "timestamp"}`),
    /// applied in each file that has the user's column and lacks the
    /// canonical one. `label` names the source in messages.
    pub fn open(
        paths: &[PathBuf],
        rename: &BTreeMap<String, String>,
        label: &str,
        batch_rows: usize,
    ) -> Result<Self> {
        if paths.is_empty() {
            return Err(Error::input(format!(
                "table 'power' ({label}): no file given; expected at least one Parquet file"
            )));
        }
        let files = paths
            .iter()
            .map(|p| {
                // A hostile footer must give an error naming the file, even
                // where the Parquet reader panics on it.
                std::panic::catch_unwind(|| open_file(p, rename, label)).unwrap_or_else(|panic| {
                    Err(Error::input(format!(
                        "table 'power' ({label}): cannot read the Parquet file {}: {}",
                        p.display(),
                        panic_message(panic.as_ref(), "the Parquet reader failed")
                    )))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        check_one_schema(&files, label)?;
        Ok(Self {
            files,
            batch_rows: batch_rows.max(1),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        })
    }

    /// Some damaged page headers make arrow-rs's reader spin for minutes or
    /// more (a Thrift list claiming billions of elements, skipped one by
    /// one; fuzz finding 15). While the engine waits on a row group, a
    /// decoder that sends nothing for this long fails the run with an error
    /// naming the row group, and is left behind instead of joined. A
    /// healthy decoder sends a batch every few milliseconds.
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// The schema of the source's batches (the first file's, projected and
    /// renamed): what the plan checks before any sample is read.
    pub fn schema(&self) -> SchemaRef {
        self.files[0].schema.clone()
    }

    /// Rows in all files, from their footers.
    pub fn num_rows(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.meta.metadata().file_metadata().num_rows().max(0) as u64)
            .sum()
    }

    pub fn num_files(&self) -> usize {
        self.files.len()
    }

    /// Each file's footer (row-group statistics included).
    pub fn footers(
        &self,
    ) -> impl Iterator<Item = (&Path, &parquet::file::metadata::ParquetMetaData)> {
        self.files
            .iter()
            .map(|f| (f.path.as_path(), f.meta.metadata().as_ref()))
    }
}

/// Decode the row groups of several scans (the Parquet sources of one run,
/// read one after the other) on `workers` threads: the batches come out in
/// scan, file, row-group and row order, and the next source is decoded
/// while the engine still integrates the last batches of the previous one.
/// With a read `window` (SPEC 8, v1.1: `[start - max_gap, end + max_gap]`
/// of an explicit period, in ns) row groups whose `ts` statistics lie
/// wholly outside it are skipped unread (see [`ParquetBatches::skipped`]).
pub fn decode(
    scans: Vec<Arc<ParquetScan>>,
    workers: usize,
    window: Option<(i64, i64)>,
) -> ParquetBatches {
    let mut skipped = Skipped::default();
    let mut units: Vec<Unit> = Vec::new();
    for (s, scan) in scans.iter().enumerate() {
        for (f, file) in scan.files.iter().enumerate() {
            for g in 0..file.meta.metadata().num_row_groups() {
                if window.is_some_and(|w| !may_meet_window(file, g, w)) {
                    let rg = file.meta.metadata().row_group(g);
                    skipped.row_groups += 1;
                    skipped.rows += rg.num_rows().max(0) as u64;
                    skipped.bytes += rg.compressed_size().max(0) as u64;
                    continue;
                }
                units.push(Unit {
                    scan: s,
                    file: f,
                    row_group: g,
                });
            }
        }
    }
    let (senders, receivers): (Vec<_>, Vec<_>) = units
        .iter()
        .map(|u| sync_channel::<Piece>(channel_depth(scans[u.scan].batch_rows)))
        .map(|(tx, rx)| (Some(tx), rx))
        .unzip();
    let shared = Arc::new(Shared {
        scans,
        units,
        claims: Mutex::new(Claims {
            senders,
            next: 0,
            draining: 0,
        }),
        advanced: Condvar::new(),
        window: workers.max(1) + 1,
        stop: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
    });
    let n = workers.clamp(1, shared.units.len().max(1));
    let handles = (0..n)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || shared.work())
        })
        .collect();
    ParquetBatches {
        shared,
        receivers: receivers.into_iter(),
        current: None,
        handles,
        stalled: false,
        skipped,
    }
}

/// What the read window left unread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub row_groups: u64,
    pub rows: u64,
    /// Compressed bytes of their column chunks (all columns).
    pub bytes: u64,
}

/// A footer's row count must be the sum of its row groups' (fuzz finding
/// 16: a damaged footer counted 10 rows whose row groups decoded 12). Each
/// row group's decoded rows are checked against its own count, so the file's
/// count is checked here: never a total that the pages contradict.
fn check_row_counts(
    meta: &parquet::file::metadata::ParquetMetaData,
) -> std::result::Result<(), String> {
    let counted = meta.file_metadata().num_rows();
    let mut groups: i64 = 0;
    for (g, row_group) in meta.row_groups().iter().enumerate() {
        let n = row_group.num_rows();
        if n < 0 {
            return Err(format!("its footer counts {n} rows in row group {g}"));
        }
        groups = groups.saturating_add(n);
    }
    if counted != groups {
        return Err(format!(
            "its footer counts {counted} rows in the file but {groups} in its row groups; the footer is damaged"
        ));
    }
    Ok(())
}

fn open_file(path: &Path, rename: &BTreeMap<String, String>, label: &str) -> Result<ScanFile> {
    let cannot = |e: &dyn std::fmt::Display| {
        Error::input(format!(
            "table 'power' ({label}): cannot read the Parquet file {}: {e}",
            path.display()
        ))
    };
    let file = File::open(path).map_err(|e| cannot(&e))?;
    let natural =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| cannot(&e))?;
    check_row_counts(natural.metadata()).map_err(|e| cannot(&e))?;
    let names: Vec<&str> = natural
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    // The user's name -> carbonledger's, where it applies to this file.
    let canonical_of = |name: &str| -> String {
        rename
            .iter()
            .find(|(c, u)| u.as_str() == name && !names.contains(&c.as_str()))
            .map_or_else(|| name.to_string(), |(c, _)| c.clone())
    };
    let canonical: Vec<String> = names.iter().map(|n| canonical_of(n)).collect();
    let power_columns: Vec<&'static str> = POWER_COLUMNS
        .into_iter()
        .filter(|c| canonical.iter().any(|n| n == c))
        .collect();
    let complete = power_columns.contains(&"device_id")
        && power_columns.contains(&"ts")
        && VALUE_COLUMNS.iter().any(|v| power_columns.contains(v));
    // With a required column missing every column is read, so that the
    // plan's schema error names what the file really has (it fails before
    // any batch is decoded).
    let roots: Vec<usize> = (0..names.len())
        .filter(|&i| !complete || POWER_COLUMNS.contains(&canonical[i].as_str()))
        .collect();
    let meta = with_dictionary_ids(natural, &canonical);
    let fields = meta.schema().fields();
    let schema = Arc::new(Schema::new(
        roots
            .iter()
            .map(|&i| fields[i].as_ref().clone().with_name(canonical[i].clone()))
            .collect::<Vec<Field>>(),
    ));
    let projection = ProjectionMask::roots(meta.parquet_schema(), roots);
    let ts_stats = canonical
        .iter()
        .position(|n| n == "ts")
        .and_then(|i| ts_statistics(&meta, i));
    Ok(ScanFile {
        path: path.to_path_buf(),
        meta,
        projection,
        schema,
        power_columns,
        ts_stats,
    })
}

/// Where the statistics of root column `root` (the `ts` column) bound its
/// times: its leaf index and the nanoseconds per unit, for a flat INT64
/// timestamp column. INT96 timestamps (whose statistics have no defined
/// order) and anything else: `None`, never pruned.
fn ts_statistics(meta: &ArrowReaderMetadata, root: usize) -> Option<(usize, i64)> {
    use arrow_schema::TimeUnit;
    use parquet::basic::Type as Physical;
    let per_unit = match meta.schema().field(root).data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        _ => return None,
    };
    let schema = meta.parquet_schema();
    let name = meta.schema().field(root).name();
    let leaf = (0..schema.num_columns()).find(|&l| {
        let c = schema.column(l);
        c.path().parts() == [name.as_str()]
    })?;
    (schema.column(leaf).physical_type() == Physical::INT64).then_some((leaf, per_unit))
}

/// Whether row group `g` of `file` may hold a row whose `ts` lies in the
/// read window `w` (SPEC 8, v1.1): false only when the row group's `ts`
/// statistics show every time outside it, so the row group is skipped
/// unread. Without statistics, or times out of range, it is read.
fn may_meet_window(file: &ScanFile, g: usize, w: (i64, i64)) -> bool {
    use parquet::file::statistics::Statistics;
    let Some((leaf, per_unit)) = file.ts_stats else {
        return true;
    };
    let row_group = file.meta.metadata().row_group(g);
    let Some(Statistics::Int64(stats)) = row_group.column(leaf).statistics() else {
        return true;
    };
    let (Some(&lo), Some(&hi)) = (stats.min_opt(), stats.max_opt()) else {
        return true;
    };
    let (Some(lo), Some(hi)) = (lo.checked_mul(per_unit), hi.checked_mul(per_unit)) else {
        return true;
    };
    // Both ends of the window are included (SPEC 8).
    hi >= w.0 && lo <= w.1
}

/// The footer read with string device ids as dictionary arrays (Parquet
/// stores them dictionary-encoded; the engine then resolves each distinct
/// id once per batch instead of once per row). Where the file's types do
/// not allow it, its natural schema (ids as strings: still exact, slower).
fn with_dictionary_ids(natural: ArrowReaderMetadata, canonical: &[String]) -> ArrowReaderMetadata {
    let schema = natural.schema();
    let Some(i) = canonical.iter().position(|n| n == "device_id") else {
        return natural;
    };
    if !matches!(
        schema.field(i).data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return natural;
    }
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let f = f.as_ref().clone();
            if k == i {
                f.with_data_type(dict.clone())
            } else {
                f
            }
        })
        .collect();
    let hinted = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = ArrowReaderOptions::new().with_schema(hinted);
    ArrowReaderMetadata::try_new(Arc::clone(natural.metadata()), options).unwrap_or(natural)
}

/// SPEC 2: the files of one source share one schema. A file with another
/// value column would otherwise read as a different kind of device.
fn check_one_schema(files: &[ScanFile], label: &str) -> Result<()> {
    let mut groups: Vec<(&[&str], Vec<&Path>)> = Vec::new();
    for f in files {
        match groups
            .iter_mut()
            .find(|(cols, _)| *cols == f.power_columns.as_slice())
        {
            Some((_, paths)) => paths.push(&f.path),
            None => groups.push((&f.power_columns, vec![&f.path])),
        }
    }
    if groups.len() <= 1 {
        return Ok(());
    }
    groups.sort_by_key(|(_, paths)| std::cmp::Reverse(paths.len()));
    let parts: Vec<String> = groups
        .iter()
        .map(|(cols, paths)| {
            format!(
                "{} file(s) with {cols:?} (e.g. '{}')",
                paths.len(),
                paths[0].display()
            )
        })
        .collect();
    Err(Error::schema(format!(
        "table 'power' ({label}): the files of one source disagree on their columns: {}; \
         expected one schema per source: give each kind as its own source, e.g. \
         power=['fleet/power', 'fleet/power_counters'] (CLI: --power DIR1 --power DIR2)",
        parts.join("; ")
    )))
}

/// What a row group's channel carries: its batches, then `None` at its end;
/// or the error that ended it.
type Piece = Result<Option<RecordBatch>>;

/// One row group of one file of one scan: what a worker decodes at a time.
#[derive(Debug, Clone, Copy)]
struct Unit {
    scan: usize,
    file: usize,
    row_group: usize,
}

/// Which units are taken, under one lock.
#[derive(Debug)]
struct Claims {
    /// Each unit's sender, taken by the worker that decodes it.
    senders: Vec<Option<SyncSender<Piece>>>,
    /// The next unit to claim.
    next: usize,
    /// The unit the consumer drains.
    draining: usize,
}

/// What the decoding workers share.
#[derive(Debug)]
struct Shared {
    scans: Vec<Arc<ParquetScan>>,
    /// In reading order.
    units: Vec<Unit>,
    claims: Mutex<Claims>,
    /// Signalled when the consumer moves to the next unit (or stops).
    advanced: Condvar,
    /// How many units from the one being drained on may be claimed (one
    /// per worker and one more, so that a lone worker can start the next
    /// row group): a worker that finished its unit while the consumer is
    /// still far behind waits, so a run of small row groups cannot all be
    /// decoded ahead. Twice the workers held about 30 MB more at 10^8
    /// samples (peak RSS 387-404 against 355-360 MB with one per worker)
    /// and ran no faster.
    window: usize,
    stop: AtomicBool,
    /// Batches decoded and not yet taken, and the most there ever were:
    /// the memory bound, checked by the tests.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl Shared {
    fn work(&self) {
        while let Some((unit, tx)) = self.claim() {
            if !self.decode(unit, &tx) {
                return;
            }
        }
    }

    /// The next unit and its sender, once it is within the window of the
    /// one being drained; `None` when all are taken or the run stopped.
    fn claim(&self) -> Option<(Unit, SyncSender<Piece>)> {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.stop.load(Ordering::Relaxed) || claims.next >= self.units.len() {
                return None;
            }
            if claims.next < claims.draining + self.window {
                break;
            }
            claims = self
                .advanced
                .wait(claims)
                .unwrap_or_else(|p| p.into_inner());
        }
        let k = claims.next;
        claims.next += 1;
        let tx = claims.senders[k].take()?;
        Some((self.units[k], tx))
    }

    /// The consumer moved to unit `k` (or stopped): wake waiting workers.
    fn advance(&self, k: usize) {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.draining = k;
        self.advanced.notify_all();
    }

    /// Decode `unit` into `tx`, then send its end; false once the consumer
    /// has gone or an error was sent: stop working. A panic of the Parquet
    /// reader on a hostile file is caught and sent as an error: the row
    /// group must never end early without one.
    fn decode(&self, unit: Unit, tx: &SyncSender<Piece>) -> bool {
        let scan = &self.scans[unit.scan];
        let file = &scan.files[unit.file];
        let g = unit.row_group;
        let cannot = |e: &dyn std::fmt::Display| {
            Error::input(format!(
                "table 'power': cannot read row group {g} of the Parquet file {}: {e}",
                file.path.display()
            ))
        };
        let run = || -> Result<bool> {
            let row_group = file.meta.metadata().row_group(g);
            let chunks = ColumnChunks::read(&file.path, row_group, &file.projection)
                .map_err(|e| cannot(&e))?;
            let reader =
                ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, file.meta.clone())
                    .with_row_groups(vec![g])
                    .with_projection(file.projection.clone())
                    .with_batch_size(scan.batch_rows)
                    .build()
                    .map_err(|e| cannot(&e))?;
            let mut rows = 0i64;
            for batch in reader {
                if self.stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                let batch = batch.map_err(|e| cannot(&e))?;
                rows += batch.num_rows() as i64;
                let batch = RecordBatch::try_new(file.schema.clone(), batch.columns().to_vec())
                    .map_err(|e| cannot(&e))?;
                // Counted before the send, so the consumer never sees it negative.
                let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
                if tx.send(Ok(Some(batch))).is_err() {
                    return Ok(false);
                }
            }
            // A row group that decodes to fewer (or more) rows than its
            // footer counts is a damaged file, never a shorter ledger.
            let counted = file.meta.metadata().row_group(g).num_rows();
            if rows != counted {
                return Err(cannot(&format!(
                    "its footer counts {counted} rows, its pages decode to {rows}"
                )));
            }
            Ok(tx.send(Ok(None)).is_ok())
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(Ok(more)) => more,
            Ok(Err(e)) => {
                let _ = tx.send(Err(e));
                false
            }
            Err(panic) => {
                let _ = tx.send(Err(cannot(&panic_message(
                    panic.as_ref(),
                    "the Parquet reader failed",
                ))));
                false
            }
        }
    }
}

/// The projected column chunks of one row group, read into memory with one
/// read each before decoding. The Parquet reader then slices its pages out
/// of them: reading the `File` itself costs a `dup`, an `lseek`, a fresh
/// buffer and a `close` for every page (about 120,000 system calls at 10^8
/// samples; this way, one read per projected column chunk). The memory held is the row
/// group's compressed projected columns, as pyarrow's reader holds.
#[derive(Clone)]
struct ColumnChunks {
    file_len: u64,
    /// Each chunk's first byte in the file and its bytes, by first byte.
    chunks: Vec<(u64, Bytes)>,
}

impl ColumnChunks {
    fn read(
        path: &Path,
        row_group: &RowGroupMetaData,
        projection: &ProjectionMask,
    ) -> std::result::Result<Self, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let file_len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut chunks = Vec::new();
        for (i, column) in row_group.columns().iter().enumerate() {
            if !projection.leaf_included(i) {
                continue;
            }
            // Where the Parquet reader starts a chunk's pages.
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let len = column.compressed_size();
            // Checked before any allocation: a damaged footer must give an
            // error, never an attempt to allocate what it claims.
            let (Ok(start), Ok(len)) = (u64::try_from(start), u64::try_from(len)) else {
                return Err(format!(
                    "column chunk {i} has a negative offset {start} or length {len}"
                ));
            };
            if start.checked_add(len).is_none_or(|end| end > file_len) {
                return Err(format!(
                    "column chunk {i} (bytes {start} to {}) lies outside the file of {file_len} bytes",
                    start.saturating_add(len)
                ));
            }
            file.seek(SeekFrom::Start(start))
                .map_err(|e| e.to_string())?;
            let mut data = Vec::with_capacity(len as usize);
            (&mut file)
                .take(len)
                .read_to_end(&mut data)
                .map_err(|e| e.to_string())?;
            if data.len() as u64 != len {
                return Err(format!(
                    "column chunk {i}: read {} of its {len} bytes",
                    data.len()
                ));
            }
            chunks.push((start, Bytes::from(data)));
        }
        chunks.sort_by_key(|(start, _)| *start);
        let read = Self { file_len, chunks };
        let rows = usize::try_from(row_group.num_rows()).unwrap_or(0);
        for (i, column) in row_group.columns().iter().enumerate() {
            if projection.leaf_included(i) {
                read.check_dictionary_page(i, column, rows)?;
            }
        }
        Ok(read)
    }

    /// A dictionary page must hold the values it counts (fuzz finding 17):
    /// arrow-rs allocates and zero-fills room for the count before decoding,
    /// so a damaged count of 2^31 values would take gigabytes. Dictionary
    /// pages are PLAIN: each value takes at least its width in bytes (a
    /// string its 4-byte length). The page is decoded twice; dictionary
    /// pages are small (a few hundred KB at most in practice).
    fn check_dictionary_page(
        &self,
        i: usize,
        column: &parquet::file::metadata::ColumnChunkMetaData,
        rows: usize,
    ) -> std::result::Result<(), String> {
        use parquet::basic::Type as Physical;
        use parquet::column::page::{Page, PageReader};
        let failed = |e: ParquetError| format!("column chunk {i}: {e}");
        let mut pages = parquet::file::serialized_reader::SerializedPageReader::new(
            Arc::new(self.clone()),
            column,
            rows,
            None,
        )
        .map_err(failed)?;
        if !pages
            .peek_next_page()
            .map_err(failed)?
            .is_some_and(|page| page.is_dict)
        {
            return Ok(());
        }
        let Some(Page::DictionaryPage {
            buf, num_values, ..
        }) = pages.get_next_page().map_err(failed)?
        else {
            return Ok(());
        };
        let width: u64 = match column.column_type() {
            Physical::BOOLEAN => 0,
            Physical::INT32 | Physical::FLOAT | Physical::BYTE_ARRAY => 4,
            Physical::INT64 | Physical::DOUBLE => 8,
            Physical::INT96 => 12,
            Physical::FIXED_LEN_BYTE_ARRAY => {
                u64::try_from(column.column_descr().type_length()).unwrap_or(0)
            }
        };
        if u64::from(num_values).saturating_mul(width) > buf.len() as u64 {
            return Err(format!(
                "column chunk {i}: its dictionary page counts {num_values} values in {} bytes; the page header is damaged",
                buf.len()
            ));
        }
        Ok(())
    }

    /// `length` bytes from `start` (to the end of its chunk when `None`),
    /// which must lie in one chunk.
    fn slice(&self, start: u64, length: Option<usize>) -> parquet::errors::Result<Bytes> {
        let k = self.chunks.partition_point(|(first, _)| *first <= start);
        if let Some((first, data)) = k.checked_sub(1).map(|k| &self.chunks[k]) {
            let from = usize::try_from(start - first).unwrap_or(usize::MAX);
            let to = length.map_or(Some(data.len()), |n| from.checked_add(n));
            if let Some(to) = to.filter(|&to| from <= to && to <= data.len()) {
                return Ok(data.slice(from..to));
            }
        }
        Err(ParquetError::General(format!(
            "a page at byte {start} lies outside the row group's column chunks"
        )))
    }
}

impl Length for ColumnChunks {
    fn len(&self) -> u64 {
        self.file_len
    }
}

impl ChunkReader for ColumnChunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// The batches of [`decode`]'s scans in order, decoded ahead by workers;
/// dropping it stops them.
#[derive(Debug)]
pub struct ParquetBatches {
    shared: Arc<Shared>,
    receivers: std::vec::IntoIter<Receiver<Piece>>,
    /// The unit being drained, and its channel.
    current: Option<(Unit, Receiver<Piece>)>,
    handles: Vec<JoinHandle<()>>,
    /// A decoder stalled: the workers are not joined (one may never end).
    stalled: bool,
    skipped: Skipped,
}

impl ParquetBatches {
    /// What the read window left unread.
    pub fn skipped(&self) -> Skipped {
        self.skipped
    }
}

impl Iterator for ParquetBatches {
    type Item = ScanBatch;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((unit, rx)) = &self.current {
                let unit = *unit;
                let timeout = self.shared.scans[unit.scan].stall_timeout;
                let path = self.shared.scans[unit.scan].files[unit.file].path.display();
                let g = unit.row_group;
                let failed = match rx.recv_timeout(timeout) {
                    Ok(Ok(Some(batch))) => {
                        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                        if batch.num_rows() == 0 {
                            continue;
                        }
                        return Some((unit.scan, Ok((unit.file, batch))));
                    }
                    Ok(Ok(None)) => {
                        self.current = None;
                        continue;
                    }
                    Ok(Err(e)) => e,
                    Err(RecvTimeoutError::Timeout) => {
                        self.stalled = true;
                        Error::input(format!(
                            "table 'power': cannot read row group {g} of the Parquet file {path}: its decoder made no progress for {} s; the file is most likely damaged (some damaged page headers make the Parquet reader spin)",
                            timeout.as_secs_f64()
                        ))
                    }
                    // The worker went without the unit's end: never a
                    // silently shorter row group.
                    Err(RecvTimeoutError::Disconnected) => Error::internal(format!(
                        "the decoder of row group {g} of the Parquet file {path} stopped before its end"
                    )),
                };
                self.current = None;
                return Some((unit.scan, Err(failed)));
            }
            let rx = self.receivers.next()?;
            let k = self.shared.units.len() - self.receivers.len() - 1;
            self.shared.advance(k);
            self.current = Some((self.shared.units[k], rx));
        }
    }
}

impl ParquetBatches {
    /// The most batches that were ever decoded and not yet taken.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::Relaxed)
    }

    /// The bound on [`Self::peak_in_flight`]: each unit of the window
    /// holds at most its channel's batches and the one being sent.
    pub fn max_in_flight(&self) -> usize {
        let depth = self
            .shared
            .scans
            .iter()
            .map(|s| channel_depth(s.batch_rows));
        (self.shared.window + 1) * (depth.max().unwrap_or(2) + 1)
    }
}

impl Drop for ParquetBatches {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.advance(usize::MAX / 2);
        // Dropping the receivers fails every pending send.
        self.current = None;
        self.receivers = Vec::new().into_iter();
        if self.stalled {
            // Detached: a stalled decoder ends when the Parquet reader
            // gives up, or with the process.
            self.handles.clear();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{DictionaryArray, Float64Array, StringArray, TimestampNanosecondArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    /// `files` files of `rows` rows each, `group` rows per row group, with
    /// string ids, ns timestamps and power; returns the paths and the
    /// concatenated (ts, power) in order.
    fn write_files(
        dir: &Path,
        files: usize,
        rows: usize,
        group: usize,
    ) -> (Vec<PathBuf>, Vec<(i64, f64)>) {
        let mut paths = Vec::new();
        let mut all = Vec::new();
        for f in 0..files {
            let ts: Vec<i64> = (0..rows)
                .map(|r| 1_700_000_000_000_000_000 + ((f * rows + r) as i64) * 1_000_000_000)
                .collect();
            let pw: Vec<f64> = (0..rows).map(|r| (f * rows + r) as f64 * 0.5).collect();
            let ids: Vec<String> = (0..rows).map(|r| format!("g{}", r % 3)).collect();
            all.extend(ts.iter().copied().zip(pw.iter().copied()));
            let schema = Arc::new(Schema::new(vec![
                Field::new("power_w", DataType::Float64, false),
                Field::new("device_id", DataType::Utf8, false),
                Field::new("note", DataType::Utf8, false),
                Field::new(
                    "time",
                    DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into())),
                    false,
                ),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Float64Array::from(pw)),
                    Arc::new(StringArray::from(ids)),
                    Arc::new(StringArray::from(vec!["x"; rows])),
                    Arc::new(TimestampNanosecondArray::from(ts).with_timezone("UTC")),
                ],
            )
            .unwrap();
            let path = dir.join(format!("part-{f}.parquet"));
            let props = WriterProperties::builder()
                .set_max_row_group_row_count(Some(group))
                .build();
            let mut w =
                ArrowWriter::try_new(File::create(&path).unwrap(), schema, Some(props)).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            paths.push(path);
        }
        (paths, all)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "carbonledger-read-parquet-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn batches_come_in_order_renamed_projected_with_dictionary_ids_and_bounded() {
        let dir = temp_dir("order");
        let (paths, all) = write_files(&dir, 3, 1000, 128);
        let rename = BTreeMap::from([("ts".to_string(), "time".to_string())]);
        for workers in [1, 2, 4] {
            for batch_rows in [1, 50, 4096] {
                let scan =
                    Arc::new(ParquetScan::open(&paths, &rename, "source 0", batch_rows).unwrap());
                assert_eq!(scan.num_rows(), 3000);
                let names: Vec<_> = scan
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                assert_eq!(names, ["power_w", "device_id", "ts"]);
                let mut got = Vec::new();
                let mut files = Vec::new();
                let mut batches = decode(vec![scan], workers, None);
                for (s, item) in batches.by_ref() {
                    let (file, b) = item.unwrap();
                    assert_eq!(s, 0);
                    assert!(b.num_rows() <= batch_rows);
                    files.push(file);
                    let ids = b
                        .column(1)
                        .as_any()
                        .downcast_ref::<DictionaryArray<arrow_array::types::Int32Type>>();
                    assert!(ids.is_some(), "string ids are read as a dictionary");
                    let ts = b
                        .column(2)
                        .as_any()
                        .downcast_ref::<TimestampNanosecondArray>()
                        .unwrap();
                    let pw = b.column(0).as_any().downcast_ref::<Float64Array>().unwrap();
                    got.extend(ts.values().iter().copied().zip(pw.values().iter().copied()));
                }
                assert_eq!(got, all, "workers {workers}, batch_rows {batch_rows}");
                assert!(files.windows(2).all(|w| w[0] <= w[1]));
                assert!(batches.peak_in_flight() <= batches.max_in_flight());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn several_scans_share_one_pipeline_and_stopping_early_ends_the_workers() {
        let dir = temp_dir("chain");
        let (paths, _) = write_files(&dir, 4, 500, 64);
        let none = BTreeMap::new();
        let a = Arc::new(ParquetScan::open(&paths[..2], &none, "source 0", 100).unwrap());
        let b = Arc::new(ParquetScan::open(&paths[2..], &none, "source 1", 100).unwrap());
        let scans: Vec<usize> = decode(vec![a.clone(), b.clone()], 2, None)
            .map(|(s, _)| s)
            .collect();
        // 2 files of 8 row groups (64 rows each, the last 52): 16 batches.
        assert_eq!(scans.iter().filter(|&&s| s == 0).count(), 16);
        assert!(scans.windows(2).all(|w| w[0] <= w[1]));
        // Dropped after one batch: the workers stop (the drop joins them).
        let mut early = decode(vec![a, b], 2, None);
        assert!(early.next().is_some());
        drop(early);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn renames_apply_per_file_and_unreadable_files_are_errors_naming_them() {
        let dir = temp_dir("errors");
        let (paths, _) = write_files(&dir, 2, 10, 10);
        let rename = BTreeMap::from([("energy_j".to_string(), "power_w".to_string())]);
        // Renaming applies per file: both files agree, as energy counters.
        let scan = ParquetScan::open(&paths, &rename, "source 0", 10).unwrap();
        assert!(scan.schema().field_with_name("energy_j").is_ok());
        let junk = dir.join("junk.parquet");
        std::fs::write(&junk, b"PAR1 not parquet at all PAR1").unwrap();
        let err = ParquetScan::open(&[paths[0].clone(), junk], &BTreeMap::new(), "source 3", 10)
            .unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Input);
        assert!(
            err.message.contains("source 3") && err.message.contains("junk.parquet"),
            "{}",
            err.message
        );
        let err = ParquetScan::open(&[], &BTreeMap::new(), "source 0", 10).unwrap_err();
        assert!(err.message.contains("no file"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pages_are_sliced_from_one_chunk_and_never_across_or_outside() {
        let chunks = ColumnChunks {
            file_len: 100,
            chunks: vec![
                (10, Bytes::from_static(b"abcde")),
                (20, Bytes::from_static(b"vwxyz")),
            ],
        };
        assert_eq!(chunks.get_bytes(11, 3).unwrap(), Bytes::from_static(b"bcd"));
        assert_eq!(
            chunks.get_bytes(20, 5).unwrap(),
            Bytes::from_static(b"vwxyz")
        );
        let mut rest = Vec::new();
        chunks.get_read(22).unwrap().read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"xyz");
        // At a chunk's end: nothing left, not an error.
        assert_eq!(chunks.get_bytes(15, 0).unwrap().len(), 0);
        for (start, len) in [(9, 1), (13, 3), (15, 1), (24, 2), (30, 1), (u64::MAX, 1)] {
            let err = chunks.get_bytes(start, len).unwrap_err().to_string();
            assert!(
                err.contains("outside the row group's column chunks"),
                "{err}"
            );
        }
        assert!(chunks.get_read(5).is_err());
        assert_eq!(chunks.len(), 100);
    }

    #[test]
    fn a_dictionary_page_counting_more_values_than_its_bytes_is_an_error_before_decoding() {
        // Fuzz finding 17: 1,891,680,655 values in 32 bytes, which arrow-rs
        // would zero-fill room for (gigabytes) before decoding.
        let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/parquet/finding-17-dictionary-page-count");
        let scan = Arc::new(ParquetScan::open(&[seed], &BTreeMap::new(), "source 0", 7).unwrap());
        let (_, first) = decode(vec![scan], 1, None).next().unwrap();
        let err = first.unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Input);
        assert!(
            err.message.contains("row group 0")
                && err.message.contains("1891680655 values in 32 bytes"),
            "{}",
            err.message
        );
    }
}
