//! Per-series statistics for `broadcastBatchData` (in the extension) and for
//! host-wide throttled aggregation (in the sidecar).
//!
//! Unlike the seed's `aggregateBatchData`, min and max start from the first
//! sample (not `PHP_FLOAT_MAX`/`PHP_FLOAT_MIN`), so negative values are right,
//! and sums are compensated so that adding 100k samples stays exact enough to
//! compare with a reference.

use std::collections::HashMap;

use crate::json::{self, NonFinite};

/// Statistics of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesStats {
    pub count: u64,
    sum: f64,
    /// Neumaier compensation term for `sum`.
    compensation: f64,
    pub min: f64,
    pub max: f64,
    pub first: f64,
    pub last: f64,
}

impl SeriesStats {
    pub fn new(first: f64) -> Self {
        Self {
            count: 1,
            sum: first,
            compensation: 0.0,
            min: first,
            max: first,
            first,
            last: first,
        }
    }

    pub fn add(&mut self, v: f64) {
        self.count += 1;
        let t = self.sum + v;
        if self.sum.abs() >= v.abs() {
            self.compensation += (self.sum - t) + v;
        } else {
            self.compensation += (v - t) + self.sum;
        }
        self.sum = t;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.last = v;
    }

    /// Folds in statistics of samples that came after ours.
    pub fn merge(&mut self, later: &SeriesStats) {
        self.count += later.count;
        let t = self.sum + later.sum;
        if self.sum.abs() >= later.sum.abs() {
            self.compensation += (self.sum - t) + later.sum;
        } else {
            self.compensation += (later.sum - t) + self.sum;
        }
        self.sum = t;
        self.compensation += later.compensation;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.last = later.last;
    }

    pub fn sum(&self) -> f64 {
        self.sum + self.compensation
    }

    pub fn average(&self) -> f64 {
        self.sum() / self.count as f64
    }

    /// `{"count":..,"sum":..,"min":..,"max":..,"average":..}` and, when asked,
    /// `"first"` and `"last"`. Fails only if a sum overflowed to infinity.
    pub fn write_json(&self, out: &mut Vec<u8>, first_last: bool) -> Result<(), NonFinite> {
        out.extend_from_slice(b"{\"count\":");
        json::write_i64(out, self.count as i64);
        out.extend_from_slice(b",\"sum\":");
        json::write_f64(out, self.sum())?;
        out.extend_from_slice(b",\"min\":");
        json::write_f64(out, self.min)?;
        out.extend_from_slice(b",\"max\":");
        json::write_f64(out, self.max)?;
        out.extend_from_slice(b",\"average\":");
        json::write_f64(out, self.average())?;
        if first_last {
            out.extend_from_slice(b",\"first\":");
            json::write_f64(out, self.first)?;
            out.extend_from_slice(b",\"last\":");
            json::write_f64(out, self.last)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// Series statistics keyed by name, kept in order of first appearance (as a
/// PHP array would be, so the JSON object lists series in that order).
#[derive(Debug, Default, Clone)]
pub struct SeriesTable {
    order: Vec<(Box<[u8]>, SeriesStats)>,
    index: HashMap<Box<[u8]>, usize>,
}

impl SeriesTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, series: &[u8], v: f64) {
        match self.index.get(series) {
            Some(&i) => self.order[i].1.add(v),
            None => {
                self.index.insert(series.into(), self.order.len());
                self.order.push((series.into(), SeriesStats::new(v)));
            }
        }
    }

    pub fn merge(&mut self, series: &[u8], stats: &SeriesStats) {
        match self.index.get(series) {
            Some(&i) => self.order[i].1.merge(stats),
            None => {
                self.index.insert(series.into(), self.order.len());
                self.order.push((series.into(), *stats));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Total samples over all series.
    pub fn samples(&self) -> u64 {
        self.order.iter().map(|(_, s)| s.count).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &SeriesStats)> {
        self.order.iter().map(|(k, s)| (&k[..], s))
    }

    pub fn clear(&mut self) {
        self.order.clear();
        self.index.clear();
    }

    /// `{"<series>":{stats},...}`. Series names must be valid UTF-8.
    pub fn write_json(&self, out: &mut Vec<u8>, first_last: bool) -> Result<(), TableJsonError> {
        out.push(b'{');
        for (i, (name, stats)) in self.order.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::write_string(out, name).map_err(|_| TableJsonError::SeriesName)?;
            out.push(b':');
            stats
                .write_json(out, first_last)
                .map_err(TableJsonError::NonFinite)?;
        }
        out.push(b'}');
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TableJsonError {
    SeriesName,
    NonFinite(NonFinite),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_and_max_are_right_for_negative_values() {
        let mut s = SeriesStats::new(-5.0);
        s.add(-1.5);
        s.add(-9.25);
        assert_eq!((s.count, s.min, s.max), (3, -9.25, -1.5));
        assert_eq!(s.sum(), -15.75);
        assert_eq!(s.average(), -5.25);
        assert_eq!((s.first, s.last), (-5.0, -9.25));
    }

    #[test]
    fn merging_equals_adding_in_order() {
        let values: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin() * 100.0).collect();
        let mut all = SeriesStats::new(values[0]);
        for v in &values[1..] {
            all.add(*v);
        }
        let mut a = SeriesStats::new(values[0]);
        for v in &values[1..400] {
            a.add(*v);
        }
        let mut b = SeriesStats::new(values[400]);
        for v in &values[401..] {
            b.add(*v);
        }
        a.merge(&b);
        assert_eq!(a.count, all.count);
        assert_eq!(
            (a.min, a.max, a.first, a.last),
            (all.min, all.max, all.first, all.last)
        );
        assert!((a.sum() - all.sum()).abs() < 1e-9);
    }

    #[test]
    fn compensated_sum_stays_exact_for_many_decimal_samples() {
        let mut s = SeriesStats::new(0.1);
        for _ in 1..100_000 {
            s.add(0.1);
        }
        assert_eq!(s.sum(), 10_000.0);
    }

    #[test]
    fn table_keeps_first_appearance_order_and_writes_seed_keys() {
        let mut t = SeriesTable::new();
        t.add(b"PLC-2", 10.0);
        t.add(b"PLC-1", -3.0);
        t.add(b"PLC-2", 20.0);
        let mut out = Vec::new();
        t.write_json(&mut out, false).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"PLC-2":{"count":2,"sum":30,"min":10,"max":20,"average":15},"PLC-1":{"count":1,"sum":-3,"min":-3,"max":-3,"average":-3}}"#
        );
        assert_eq!(t.samples(), 3);
        let mut out = Vec::new();
        t.write_json(&mut out, true).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains(r#""first":10,"last":20"#));
    }
}
