//! Fuzz inputs as "genes": plain structs read from the fuzz bytes through
//! `arbitrary::Unstructured`, and written back by the same code (the seeds
//! example encodes scenarios taken from the tests). Every type implements
//! [`Gene`] once, with one `io` method that reads or writes, so the two
//! directions cannot drift apart.

use arbitrary::Unstructured;

/// A byte source or sink.
pub trait Io {
    fn reading(&self) -> bool;
    fn bytes(&mut self, b: &mut [u8]);
}

/// Reads from the fuzzer's bytes; zeros once they run out.
pub struct Reader<'a>(pub Unstructured<'a>);

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self(Unstructured::new(data))
    }
}

impl Io for Reader<'_> {
    fn reading(&self) -> bool {
        true
    }

    fn bytes(&mut self, b: &mut [u8]) {
        if self.0.fill_buffer(b).is_err() {
            b.fill(0);
        }
    }
}

/// Writes seed bytes.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Io for Writer {
    fn reading(&self) -> bool {
        false
    }

    fn bytes(&mut self, b: &mut [u8]) {
        self.0.extend_from_slice(b);
    }
}

pub trait Gene: Default {
    fn io<I: Io>(&mut self, io: &mut I);

    fn read(data: &[u8]) -> Self {
        let mut g = Self::default();
        g.io(&mut Reader::new(data));
        g
    }

    fn write(&mut self) -> Vec<u8> {
        let mut w = Writer::default();
        self.io(&mut w);
        w.0
    }
}

macro_rules! int_gene {
    ($($t:ty),*) => {$(
        impl Gene for $t {
            fn io<I: Io>(&mut self, io: &mut I) {
                let mut b = self.to_le_bytes();
                io.bytes(&mut b);
                *self = <$t>::from_le_bytes(b);
            }
        }
    )*};
}
int_gene!(u8, u16, u32, u64, i64);

impl Gene for bool {
    fn io<I: Io>(&mut self, io: &mut I) {
        let mut b = u8::from(*self);
        b.io(io);
        *self = b & 1 == 1;
    }
}

impl<T: Gene> Gene for Option<T> {
    fn io<I: Io>(&mut self, io: &mut I) {
        let mut some = self.is_some();
        some.io(io);
        if io.reading() {
            *self = some.then(T::default);
        }
        if let Some(x) = self {
            x.io(io);
        }
    }
}

/// A list of at most `MAX` genes (its length: one byte, modulo `MAX + 1`).
#[derive(Debug, Clone, Default)]
pub struct List<T, const MAX: usize>(pub Vec<T>);

impl<T: Gene, const MAX: usize> Gene for List<T, MAX> {
    fn io<I: Io>(&mut self, io: &mut I) {
        let mut n = self.0.len() as u8;
        n.io(io);
        if io.reading() {
            let n = usize::from(n) % (MAX + 1);
            self.0.clear();
            self.0.resize_with(n, T::default);
        }
        for x in &mut self.0 {
            x.io(io);
        }
    }
}

/// `struct` with fields that are all genes, read and written in order.
#[macro_export]
macro_rules! genes {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }
        impl $crate::gene::Gene for $name {
            fn io<I: $crate::gene::Io>(&mut self, io: &mut I) {
                $(self.$f.io(io);)*
            }
        }
    };
}

macro_rules! tuple_gene {
    ($($n:tt $t:ident),*) => {
        impl<$($t: Gene),*> Gene for ($($t,)*) {
            fn io<I: Io>(&mut self, io: &mut I) {
                $(self.$n.io(io);)*
            }
        }
    };
}
tuple_gene!(0 A, 1 B);
tuple_gene!(0 A, 1 B, 2 C);
tuple_gene!(0 A, 1 B, 2 C, 3 D);
