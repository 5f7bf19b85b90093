//! Power sources as the engine takes them: Parquet files read in Rust
//! (`ParquetScan`, decoded on the engine's side of the GIL), or any Arrow
//! stream a Python producer hands over.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use carbonledger_core::{Error, ErrorKind};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use pyo3_arrow::PyRecordBatchReader;

use crate::errors;

/// The files of one power source, their footers read and checked (SPEC 2:
/// one schema per source). Pass it in `account`'s `power` list.
#[pyclass(frozen, module = "carbonledger._native")]
#[derive(Debug)]
pub struct ParquetScan {
    inner: Arc<carbonledger_core::ParquetScan>,
}

#[pymethods]
impl ParquetScan {
    #[new]
    #[pyo3(signature = (paths, columns, label, batch_rows=1048576))]
    // PyO3 extracts the arguments as owned values.
    #[allow(clippy::needless_pass_by_value)]
    fn new(
        py: Python<'_>,
        paths: Vec<PathBuf>,
        columns: BTreeMap<String, String>,
        label: &str,
        batch_rows: usize,
    ) -> PyResult<Self> {
        let scan =
            py.detach(|| carbonledger_core::ParquetScan::open(&paths, &columns, label, batch_rows));
        match scan {
            Ok(scan) => Ok(Self {
                inner: Arc::new(scan),
            }),
            Err(e) => Err(errors::to_py(py, e)),
        }
    }

    /// Rows in all files, from their footers.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.inner.num_rows()
    }

    #[getter]
    fn num_files(&self) -> usize {
        self.inner.num_files()
    }

    /// The schema of the batches (Arrow PyCapsule interface): the first
    /// file's power columns with carbonledger's names.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        Ok(pyo3_arrow::ffi::to_schema_pycapsule(
            py,
            self.inner.schema().as_ref(),
        )?)
    }
}

/// One item of `account`'s `power` list.
#[derive(FromPyObject)]
pub enum PowerSource {
    Parquet(Py<ParquetScan>),
    Stream(PyRecordBatchReader),
}

/// A source's batches with the file each came from (-1: not a file).
pub type Tagged = Box<dyn Iterator<Item = Result<(i64, arrow_array::RecordBatch), Error>> + Send>;

/// An opened source: the schema the plan checks, and its batches.
pub struct Opened {
    pub schema: arrow_schema::SchemaRef,
    pub batches: Tagged,
}

/// Open every source. The Parquet scans share one decoding pipeline, which
/// starts when the engine reaches the first of them and runs ahead into
/// the next while the engine finishes the previous one.
/// `window`: the read window of an explicit period (SPEC 8, v1.1), in ns:
/// Parquet row groups wholly outside it are skipped unread, as `ReadStats`
/// then tells.
pub fn open_all(
    power: Vec<PowerSource>,
    workers: usize,
    window: Option<(i64, i64)>,
) -> PyResult<(Vec<Opened>, ReadStats)> {
    let scans: Vec<Arc<carbonledger_core::ParquetScan>> = power
        .iter()
        .filter_map(|p| match p {
            PowerSource::Parquet(scan) => Some(Arc::clone(&scan.get().inner)),
            PowerSource::Stream(_) => None,
        })
        .collect();
    let chain = Arc::new(Mutex::new(Chain {
        scans: Some(scans),
        workers,
        window,
        running: None,
        stash: None,
    }));
    let stats = ReadStats {
        chain: Arc::clone(&chain),
    };
    let mut k = 0;
    let opened = power
        .into_iter()
        .map(|p| match p {
            PowerSource::Parquet(scan) => {
                let part = ChainPart {
                    chain: Arc::clone(&chain),
                    scan: k,
                };
                k += 1;
                Ok(Opened {
                    schema: scan.get().inner.schema(),
                    batches: Box::new(part),
                })
            }
            PowerSource::Stream(stream) => {
                let reader = stream.into_reader()?;
                let schema = reader.schema();
                let batches = reader.map(|b| {
                    b.map(|b| (-1, b)).map_err(|e| {
                        Error::input(format!(
                            "table 'power': cannot read a batch of samples: {e}"
                        ))
                    })
                });
                Ok(Opened {
                    schema,
                    batches: Box::new(batches),
                })
            }
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok((opened, stats))
}

/// What the Parquet pipeline of a run left unread, once it has run.
pub struct ReadStats {
    chain: Arc<Mutex<Chain>>,
}

impl ReadStats {
    pub fn skipped(&self) -> carbonledger_core::read_parquet::Skipped {
        let chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        chain
            .running
            .as_ref()
            .map(carbonledger_core::ParquetBatches::skipped)
            .unwrap_or_default()
    }
}

/// The decoding pipeline of a run's Parquet scans, shared by their sources.
struct Chain {
    /// Until the pipeline starts.
    scans: Option<Vec<Arc<carbonledger_core::ParquetScan>>>,
    workers: usize,
    window: Option<(i64, i64)>,
    running: Option<carbonledger_core::ParquetBatches>,
    /// The first batch of the next scan, pulled by the one before.
    stash: Option<carbonledger_core::read_parquet::ScanBatch>,
}

/// One scan's batches, taken from the shared pipeline.
struct ChainPart {
    chain: Arc<Mutex<Chain>>,
    scan: usize,
}

impl Iterator for ChainPart {
    type Item = Result<(i64, arrow_array::RecordBatch), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(scans) = chain.scans.take() {
            let (workers, window) = (chain.workers, chain.window);
            chain.running = Some(carbonledger_core::read_parquet::decode(
                scans, workers, window,
            ));
        }
        let (scan, item) = match chain.stash.take() {
            Some(pulled) => pulled,
            None => chain.running.as_mut()?.next()?,
        };
        if scan != self.scan {
            chain.stash = Some((scan, item));
            return None;
        }
        Some(item.map(|(file, batch)| (file as i64, batch)))
    }
}

/// Calls a Python progress hook `hook(file, rows, False)` after each batch
/// and `hook(-1, 0, True)` when the source is exhausted. An exception it raises
/// ends the run and is re-raised as it is (`failed`).
pub fn with_progress(
    batches: Tagged,
    hook: Option<Py<PyAny>>,
    failed: Arc<Mutex<Option<PyErr>>>,
) -> Box<dyn Iterator<Item = Result<arrow_array::RecordBatch, Error>> + Send> {
    let Some(hook) = hook else {
        return Box::new(batches.map(|item| item.map(|(_, b)| b)));
    };
    let call = move |file: i64, rows: usize, end: bool| -> Result<(), Error> {
        Python::attach(|py| match hook.call1(py, (file, rows, end)) {
            Ok(_) => Ok(()),
            Err(e) => {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                Err(Error::new(
                    ErrorKind::Interrupted,
                    "progress callback raised",
                ))
            }
        })
    };
    let mut done = false;
    let mut batches = batches;
    Box::new(std::iter::from_fn(move || {
        if done {
            return None;
        }
        match batches.next() {
            Some(Ok((file, batch))) => Some(call(file, batch.num_rows(), false).map(|()| batch)),
            Some(Err(e)) => {
                done = true;
                Some(Err(e))
            }
            None => {
                done = true;
                call(-1, 0, true).err().map(Err)
            }
        }
    }))
}
