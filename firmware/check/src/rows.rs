//! Input rows: Criteo-Kaggle text read into dense values and ids, and the file of rows the
//! firmware embeds.

use crate::Result;

/// Magic of the input-rows file the firmware embeds.
pub const ROWS_MAGIC: &[u8; 8] = b"MLETROWS";

/// Input rows: `num_dense` f32 and `num_ids` u32 per row, row after row.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Dense values per row.
    pub num_dense: usize,
    /// Raw ids per row.
    pub num_ids: usize,
    /// All dense values, row after row.
    pub dense: Vec<f32>,
    /// All raw ids, row after row.
    pub ids: Vec<u32>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.dense.len().checked_div(self.num_dense).unwrap_or(0)
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dense values and ids of row `r`.
    pub fn row(&self, r: usize) -> (&[f32], &[u32]) {
        (
            &self.dense[r * self.num_dense..(r + 1) * self.num_dense],
            &self.ids[r * self.num_ids..(r + 1) * self.num_ids],
        )
    }

    /// The first `count` rows of Criteo-Kaggle text (label, 13 integer columns, 26 hex tokens,
    /// tab-separated): dense = the integers as f32 (empty = 0), ids = `criteo_id` of the tokens.
    pub fn from_criteo_tsv(text: &str, count: usize) -> Result<Rows> {
        let mut rows = Rows {
            num_dense: 13,
            num_ids: 26,
            dense: Vec::new(),
            ids: Vec::new(),
        };
        for (n, line) in text.lines().take(count).enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != 40 {
                return Err(fail!(
                    "line {}: {} fields, a Criteo row has 40",
                    n + 1,
                    fields.len()
                ));
            }
            for f in &fields[1..14] {
                let v: i64 = if f.is_empty() {
                    0
                } else {
                    f.parse()
                        .map_err(|_| fail!("line {}: `{f}` is not an integer", n + 1))?
                };
                rows.dense.push(v as f32);
            }
            for f in &fields[14..] {
                let id = mlet_formats::ids::criteo_id(f.as_bytes())
                    .map_err(|e| fail!("line {}: `{f}`: {e}", n + 1))?;
                rows.ids.push(id);
            }
        }
        if rows.len() < count {
            return Err(fail!("asked for {count} rows, the text has {}", rows.len()));
        }
        Ok(rows)
    }

    /// The file the firmware embeds: `MLETROWS`, u32 LE rows, num_dense, num_ids, then each row's
    /// dense f32 LE and ids u32 LE.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = ROWS_MAGIC.to_vec();
        for v in [self.len(), self.num_dense, self.num_ids] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        for r in 0..self.len() {
            let (dense, ids) = self.row(r);
            dense
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
            ids.iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        out
    }

    /// Reads what [`Rows::to_bytes`] writes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Rows> {
        let word = |i: usize| -> Option<usize> {
            Some(u32::from_le_bytes(bytes.get(8 + 4 * i..12 + 4 * i)?.try_into().ok()?) as usize)
        };
        if bytes.get(..8) != Some(&ROWS_MAGIC[..]) {
            return Err(fail!("not an input-rows file"));
        }
        let (rows, num_dense, num_ids) = match (word(0), word(1), word(2)) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => return Err(fail!("input-rows file truncated")),
        };
        if bytes.len() != 20 + rows * 4 * (num_dense + num_ids) {
            return Err(fail!("input-rows file length does not match its header"));
        }
        let mut out = Rows {
            num_dense,
            num_ids,
            dense: Vec::new(),
            ids: Vec::new(),
        };
        let mut words = bytes[20..]
            .chunks_exact(4)
            .map(|b| [b[0], b[1], b[2], b[3]]);
        for _ in 0..rows {
            out.dense
                .extend(words.by_ref().take(num_dense).map(f32::from_le_bytes));
            out.ids
                .extend(words.by_ref().take(num_ids).map(u32::from_le_bytes));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "0\t1\t\t-1\t4\t5\t6\t7\t8\t9\t10\t11\t12\t13\t68fd1e64\t\t0000000a\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\t00000001\tFFFFFFFF\n";

    #[test]
    fn criteo_rows_parse_and_round_trip() {
        let rows = Rows::from_criteo_tsv(TSV, 1).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows.dense[..4], &[1.0, 0.0, -1.0, 4.0]);
        assert_eq!(&rows.ids[..3], &[0x68fd_1e64, 0, 10]);
        assert_eq!(rows.ids[25], u32::MAX);
        let bytes = rows.to_bytes();
        assert_eq!(bytes.len(), 20 + 4 * 39);
        assert_eq!(Rows::from_bytes(&bytes).unwrap(), rows);
        assert!(Rows::from_criteo_tsv(TSV, 2).is_err(), "too few rows");
        assert!(
            Rows::from_criteo_tsv("0\t1\n", 1).is_err(),
            "too few fields"
        );
        assert!(Rows::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }
}
