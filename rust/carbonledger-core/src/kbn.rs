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

    /// Add another compensated sum, both of its words: the difference of two
    /// running totals stays as precise as a sum of the terms in between.
    #[inline]
    pub fn add_sum(&mut self, o: &Kbn) {
        self.add(o.sum);
        self.add(o.comp);
    }

    /// Subtract another compensated sum (see `add_sum`).
    #[inline]
    pub fn sub_sum(&mut self, o: &Kbn) {
        self.add(-o.sum);
        self.add(-o.comp);
    }

    /// The sum times `k` (one rounding of each word).
    #[inline]
    pub fn scaled(&self, k: f64) -> Kbn {
        Kbn {
            sum: self.sum * k,
            comp: self.comp * k,
        }
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

    #[test]
    fn difference_of_running_totals_keeps_small_terms() {
        // A running total passes 1e16; the terms added between two reads of
        // it are recovered exactly from the difference of the reads.
        let mut total = Kbn::default();
        total.add(1e16);
        let before = total;
        for _ in 0..1000 {
            total.add(0.1);
        }
        let mut between = Kbn::default();
        between.add_sum(&total);
        between.sub_sum(&before);
        assert!((between.value() - 100.0).abs() < 1e-9);
        assert_eq!(between.scaled(0.5).value(), 0.5 * between.value());
    }
}
