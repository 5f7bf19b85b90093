//! The exception tree, created once when the module loads and re-exported
//! by `carbonledger.exceptions`: each core error kind maps to its class with
//! a `match`, never by looking a name up at raise time.

use carbonledger_core::{Error, ErrorKind};
use pyo3::exceptions::{PyException, PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The classes, in the order they are created (each after its bases).
struct Tree {
    base: Py<PyType>,
    input: Py<PyType>,
    schema: Py<PyType>,
    unknown_id: Py<PyType>,
    coverage: Py<PyType>,
    overlap: Py<PyType>,
    order: Py<PyType>,
    invalid_sample: Py<PyType>,
    internal: Py<PyType>,
}

static TREE: PyOnceLock<Tree> = PyOnceLock::new();

/// `class name(*bases): """doc"""`, shown as `carbonledger.exceptions.name`.
fn class(py: Python<'_>, name: &str, bases: &[&Py<PyType>], doc: &str) -> PyResult<Py<PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "carbonledger.exceptions")?;
    dict.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases.iter().map(|b| b.bind(py)))?;
    let cls = py.get_type::<PyType>().call1((name, bases, dict))?;
    Ok(cls.cast_into::<PyType>()?.unbind())
}

fn build(py: Python<'_>) -> PyResult<Tree> {
    let exception = py.get_type::<PyException>().unbind();
    let value_error = py.get_type::<PyValueError>().unbind();
    let base = class(
        py,
        "CarbonLedgerError",
        &[&exception],
        "Base of every carbonledger error.",
    )?;
    // Input problems are also `ValueError`s, so `except ValueError` keeps
    // working for callers that do not care which rule was broken.
    let input = class(
        py,
        "InputError",
        &[&base, &value_error],
        "An input value is outside its domain (e.g. ``end <= start``, ``pue < 1``).",
    )?;
    let sub = |name: &str, doc: &str| class(py, name, &[&input], doc);
    Ok(Tree {
        schema: sub(
            "SchemaError",
            "A required column is missing or has a type that cannot be read.",
        )?,
        unknown_id: sub(
            "UnknownIdError",
            "An id refers to nothing: ``device_id`` not in devices, unknown ``site_id``.",
        )?,
        coverage: sub(
            "CoverageError",
            "Grid intensity rows leave a hole, or overlap, inside the period.",
        )?,
        overlap: sub(
            "OverlapError",
            "Allocation shares on one device sum above 1 inside the period.",
        )?,
        order: sub(
            "OrderError",
            "A device's samples go back in time in a stream not asked to sort.",
        )?,
        invalid_sample: sub(
            "InvalidSampleError",
            "A NaN, infinite or negative sample with ``on_invalid=\"raise\"``, or a sample \
             above the power ceiling.",
        )?,
        internal: class(
            py,
            "InternalError",
            &[&base],
            "A bug in carbonledger itself; please report it with the message.",
        )?,
        base,
        input,
    })
}

fn tree(py: Python<'_>) -> PyResult<&Tree> {
    TREE.get_or_try_init(py, || build(py))
}

/// Create the classes and add them to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let t = tree(m.py())?;
    for cls in [
        &t.base,
        &t.input,
        &t.schema,
        &t.unknown_id,
        &t.coverage,
        &t.overlap,
        &t.order,
        &t.invalid_sample,
        &t.internal,
    ] {
        let cls = cls.bind(m.py());
        m.add(cls.name()?, cls)?;
    }
    Ok(())
}

/// The class of an error kind (`KeyboardInterrupt` for an interrupted run).
fn class_of<'py>(py: Python<'py>, kind: ErrorKind) -> PyResult<Bound<'py, PyType>> {
    let t = tree(py)?;
    let cls = match kind {
        ErrorKind::Schema => &t.schema,
        ErrorKind::Input => &t.input,
        ErrorKind::UnknownId => &t.unknown_id,
        ErrorKind::Coverage => &t.coverage,
        ErrorKind::Overlap => &t.overlap,
        ErrorKind::Order => &t.order,
        ErrorKind::InvalidSample => &t.invalid_sample,
        ErrorKind::Interrupted => return Ok(py.get_type::<PyKeyboardInterrupt>()),
        ErrorKind::Internal => &t.internal,
    };
    Ok(cls.bind(py).clone())
}

/// The class name of an error kind, as `validate` lists its problems.
pub fn class_name(py: Python<'_>, kind: ErrorKind) -> PyResult<String> {
    Ok(class_of(py, kind)?.name()?.to_string())
}

/// A core error as the Python exception of its kind.
pub fn to_py(py: Python<'_>, e: Error) -> PyErr {
    match class_of(py, e.kind) {
        Ok(cls) => PyErr::from_type(cls, e.message),
        // Only if the classes could not be created at all (out of memory).
        Err(err) => err,
    }
}
