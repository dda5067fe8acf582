//! Deduplication of a batch's row ids, shared by both steps: the gradient of a row that several
//! examples touch is summed once, and the optimizer updates each touched row once.

/// Deduplicates ids in order of first appearance with an open-addressing hash table reused
/// across calls.
#[derive(Default)]
pub struct Dedup {
    /// 0: empty; otherwise 1 + the id's index in `unique`.
    slots: Vec<u32>,
}

impl Dedup {
    /// Fills `unique` with the distinct values of `ids` and `inverse` with each id's index
    /// among them.
    pub fn run(&mut self, ids: &[u32], unique: &mut Vec<u32>, inverse: &mut Vec<u32>) {
        let bits = (2 * ids.len()).next_power_of_two().max(16).trailing_zeros();
        let mask = (1usize << bits) - 1;
        self.slots.clear();
        self.slots.resize(mask + 1, 0);
        unique.clear();
        inverse.clear();
        for &id in ids {
            // Fibonacci hashing: the top bits of id times 2^64 / golden ratio.
            let mut slot =
                ((id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize;
            loop {
                match self.slots[slot] {
                    0 => {
                        unique.push(id);
                        self.slots[slot] = unique.len() as u32;
                        inverse.push(unique.len() as u32 - 1);
                        break;
                    }
                    s if unique[s as usize - 1] == id => {
                        inverse.push(s - 1);
                        break;
                    }
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::rng::Rng;

    /// The plain definition: distinct values in order of first appearance, and each value's
    /// index among them.
    fn unique_inverse(ids: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let mut position: HashMap<u32, u32> = HashMap::new();
        let mut unique = Vec::new();
        let inverse = ids
            .iter()
            .map(|&id| {
                *position.entry(id).or_insert_with(|| {
                    unique.push(id);
                    unique.len() as u32 - 1
                })
            })
            .collect();
        (unique, inverse)
    }

    #[test]
    fn dedup_keeps_first_appearance_order() {
        let mut dedup = Dedup::default();
        let (mut unique, mut inverse) = (Vec::new(), Vec::new());
        dedup.run(&[5, 3, 5, 9, 3, 3], &mut unique, &mut inverse);
        assert_eq!(unique, vec![5, 3, 9]);
        assert_eq!(inverse, vec![0, 1, 0, 2, 1, 1]);
        let mut rng = Rng::new(7);
        for (len, range) in [
            (0, 1),
            (1, 1),
            (128, 5),
            (128, 1000),
            (300, u64::MAX),
            (7, 3),
        ] {
            let ids: Vec<u32> = (0..len)
                .map(|_| (rng.next_u64() % range.min(1 << 32)) as u32)
                .collect();
            dedup.run(&ids, &mut unique, &mut inverse);
            assert_eq!((unique.clone(), inverse.clone()), unique_inverse(&ids));
        }
    }
}
