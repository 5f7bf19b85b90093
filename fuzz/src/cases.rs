//! The genes of each target but `account` (whose input is a
//! [`Fleet`](crate::fleet::Fleet)), here so that the seeds example can
//! write them.

use crate::fleet::{Delta, Fleet, Opts, Time, Val};
use crate::gene::List;
use crate::genes;

genes! {
    /// `integrate`: one sample of device a (false) or b (true).
    pub struct Step { pub device: bool, pub dt: Delta, pub value: Val }
}

genes! {
    /// `integrate`: what differs between its two devices.
    pub struct IntegrateDev { pub idle: Val, pub wrap: Val, pub t0: Time }
}

genes! {
    /// `integrate`: an allocation on device a (false) or b (true).
    pub struct IntegrateAlloc { pub device: bool, pub start: Time, pub len: Delta, pub share: Val }
}

genes! {
    /// `integrate`: two devices, one site, one grid row, many samples.
    pub struct IntegrateCase {
        pub counters: bool,
        pub opts: Opts,
        pub pue: Val,
        pub c: Val,
        pub cfe: Val,
        pub embodied: Val,
        pub installed: Time,
        pub lifetime: Val,
        pub a: IntegrateDev,
        pub b: IntegrateDev,
        pub allocs: List<IntegrateAlloc, 3>,
        pub steps: List<Step, 200>,
        pub cuts: List<u8, 8>,
    }
}

genes! {
    /// `ids`: a key column, a referencing column in several layouts.
    pub struct IdsCase {
        pub base: u8,
        pub layouts: (u8, u8, u8),
        pub keys: List<u8, 12>,
        pub refs: List<u8, 64>,
        pub reversed: bool,
        pub extra: u8,
        pub null_value: bool,
        pub bad_key: u8,
        pub offset: u8,
        pub len: u8,
    }
}

genes! {
    /// `schema`: a time column, a numeric column, strings to parse.
    pub struct SchemaCase {
        pub ty: u8,
        /// (null, value in ticks): a null's slot still holds its value.
        pub times: List<(bool, Time), 24>,
        pub num_ty: u8,
        pub nums: List<Val, 24>,
        pub garbage: List<u8, 24>,
        pub offset: u8,
    }
}

genes! {
    /// `timeline`: an intensity row on the small grid of instants.
    pub struct TimelineRow { pub region: bool, pub start: u8, pub len: Option<u8>, pub c: u8 }
}

genes! {
    /// `timeline`: an allocation on the small grid of instants.
    pub struct TimelineJob { pub device: bool, pub start: u8, pub len: u8, pub share: u8 }
}

genes! {
    /// `timeline`: rows, jobs and a period on instants `base + k x unit`.
    pub struct TimelineCase {
        pub base: u8,
        pub unit: u8,
        pub rows: List<TimelineRow, 8>,
        pub jobs: List<TimelineJob, 8>,
        pub p0: u8,
        pub p1: u8,
    }
}

genes! {
    /// `validate`: a change to one column of one table.
    pub struct Mutation { pub table: u8, pub column: u8, pub op: u8, pub other: u8 }
}

genes! {
    /// `validate`: a fleet and what to break in it.
    pub struct ValidateCase { pub fleet: Fleet, pub mutations: List<Mutation, 4> }
}
