//! Binary classification metrics: exact AUC (ties get their average rank), logloss, normalized
//! entropy and accuracy.

use serde_json::json;

/// Metrics of probabilities against 0/1 labels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Area under the ROC curve, exact, ties averaged; NaN when only one class is present.
    pub auc: f64,
    /// Mean binary cross-entropy (natural log), probabilities clamped to [1e-7, 1 - 1e-7].
    pub logloss: f64,
    /// Logloss divided by the entropy of the positive rate (lower is better; 1 = no information).
    pub normalized_entropy: f64,
    /// Fraction of rows where `p >= 0.5` matches the label.
    pub accuracy: f64,
    /// Rows scored.
    pub rows: u64,
    /// Positive rows.
    pub positives: u64,
}

impl Metrics {
    /// Computes every metric. `probabilities` and `labels` have the same length.
    pub fn compute(probabilities: &[f32], labels: &[f32]) -> Metrics {
        assert_eq!(
            probabilities.len(),
            labels.len(),
            "one probability per label"
        );
        let rows = labels.len() as u64;
        let positives = labels.iter().filter(|&&y| y > 0.5).count() as u64;
        let eps = 1e-7;
        let mut logloss = 0.0;
        let mut correct = 0u64;
        for (&p, &y) in probabilities.iter().zip(labels) {
            let p = (p as f64).clamp(eps, 1.0 - eps);
            let positive = y > 0.5;
            logloss -= if positive { p.ln() } else { (1.0 - p).ln() };
            correct += u64::from((p >= 0.5) == positive);
        }
        let n = rows.max(1) as f64;
        logloss /= n;
        let rate = (positives as f64 / n).clamp(eps, 1.0 - eps);
        let entropy = -(rate * rate.ln() + (1.0 - rate) * (1.0 - rate).ln());
        Metrics {
            auc: auc(probabilities, labels),
            logloss,
            normalized_entropy: logloss / entropy,
            accuracy: correct as f64 / n,
            rows,
            positives,
        }
    }

    /// The metrics as JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "auc": self.auc,
            "logloss": self.logloss,
            "normalized_entropy": self.normalized_entropy,
            "accuracy": self.accuracy,
            "rows": self.rows,
            "positives": self.positives,
        })
    }
}

/// Exact ROC AUC by the rank-sum (Mann-Whitney) formula; tied scores share their average rank.
/// NaN when the labels hold only one class.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| labels[k] > 0.5).count() as f64;
        rank_sum += mean_rank * tied_positives;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUC by counting every positive-negative pair (ties count 1/2).
    fn pairwise_auc(s: &[f32], y: &[f32]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for i in 0..s.len() {
            for j in 0..s.len() {
                if y[i] > 0.5 && y[j] < 0.5 {
                    pairs += 1.0;
                    wins += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn auc_matches_pair_counting_with_ties() {
        let mut rng = crate::rng::Rng::new(5);
        for _ in 0..20 {
            let n = 1 + (rng.next_u64() % 60) as usize;
            // Few distinct scores, so ties are common.
            let s: Vec<f32> = (0..n).map(|_| (rng.next_u64() % 7) as f32 / 7.0).collect();
            let y: Vec<f32> = (0..n).map(|_| (rng.next_u64() % 2) as f32).collect();
            let (a, b) = (auc(&s, &y), pairwise_auc(&s, &y));
            assert!(
                a.is_nan() && b.is_nan() || (a - b).abs() < 1e-12,
                "{a} vs {b}"
            );
        }
        assert_eq!(auc(&[0.1, 0.9], &[0.0, 1.0]), 1.0);
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
    }

    #[test]
    fn logloss_entropy_accuracy() {
        let m = Metrics::compute(&[0.25, 0.25, 0.25, 0.25], &[1.0, 0.0, 0.0, 0.0]);
        let expected = -(0.25f64.ln() + 3.0 * 0.75f64.ln()) / 4.0;
        assert!((m.logloss - expected).abs() < 1e-7);
        // Predicting the base rate carries no information.
        assert!((m.normalized_entropy - 1.0).abs() < 1e-6);
        assert_eq!(m.accuracy, 0.75);
        assert_eq!((m.rows, m.positives), (4, 1));
    }
}
