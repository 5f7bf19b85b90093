//! Compensated (Kahan-Babuska-Neumaier) summation: the error of a sum of n
//! terms stays O(eps) instead of O(n eps), so a billion pieces still meet the
//! 1e-9 invariants.

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Kbn {
    sum: f64,
    comp: f64,
}

impl Kbn {
    /// Knuth's TwoSum gives the same exact rounding error as Neumaier's
    /// ordered form, without a data-dependent branch.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        let z = t - self.sum;
        self.comp += (self.sum - (t - z)) + (x - z);
        self.sum = t;
    }

    #[inline]
    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_small_terms_lost_by_naive_sum() {
        let mut k = Kbn::default();
        k.add(1e16);
        for _ in 0..1000 {
            k.add(1.0);
        }
        k.add(-1e16);
        assert_eq!(k.value(), 1000.0);
    }
}
