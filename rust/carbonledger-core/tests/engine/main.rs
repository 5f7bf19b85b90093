//! The core's integration tests, as one test binary: each binary links the
//! whole engine with Arrow and Parquet under the release profile's
//! link-time optimization, so one binary instead of three saves two such
//! links in every fresh `make test`.

mod hostile;
mod overlap;
mod properties;
