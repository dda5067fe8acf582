//! The column schema of a user's own log (DESIGN.md, "Data from users' own logs"): which named
//! columns of a CSV, TSV or Parquet file are the label, the dense values and the categorical
//! features, and the rules that turn their values into model inputs, shared by every reader so
//! that a CSV and a Parquet copy of the same log give the same bits.
//!
//! The schema is JSON, the same text a schema file holds and a model file stores under the
//! metadata key `schema`:
//!
//! ```text
//! {"label": "income", "positive": [">50K"], "dense": ["age", "hours-per-week"],
//!  "categorical": ["workclass", "education"]}
//! ```
//!
//! `positive` is optional. A dense or categorical name ending in `*` selects every column of the
//! file whose name starts with the text before it, in file order, the label column excepted;
//! [`ColumnSchema::resolve`] replaces such patterns by the names they match.

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Map, Value};

use super::{shown, Schema};

/// Which columns of a user's file feed the model, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSchema {
    /// The label column.
    pub label: String,
    /// Label texts that mean 1 (any other text means 0); empty: labels are 0/1 or true/false.
    pub positive: Vec<String>,
    /// Dense columns, in model order (names or `PREFIX*` patterns).
    pub dense: Vec<String>,
    /// Categorical columns, one embedding table each, in table order (names or patterns).
    pub categorical: Vec<String>,
}

/// The keys a schema may have.
const KEYS: [&str; 4] = ["label", "positive", "dense", "categorical"];

impl ColumnSchema {
    /// Parses a schema's JSON text; unknown keys, wrong types and empty lists are errors.
    pub fn from_json(text: &str) -> Result<ColumnSchema> {
        let value: Value = serde_json::from_str(text).context("the schema is not valid JSON")?;
        let Value::Object(map) = value else {
            bail!("the schema must be a JSON object with the keys {KEYS:?}");
        };
        if let Some(key) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            bail!("unknown key `{key}` in the schema (known: {KEYS:?})");
        }
        let names = |key: &str| -> Result<Vec<String>> {
            match map.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.clone()),
                        other => bail!("schema key `{key}`: {other} is not a string"),
                    })
                    .collect(),
                Some(other) => bail!("schema key `{key}` must be a list of strings, not {other}"),
            }
        };
        let label = match map.get("label") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => bail!("schema key `label` must be a string, not {other}"),
            None => bail!("the schema has no `label` column"),
        };
        let schema = ColumnSchema {
            label,
            positive: names("positive")?,
            dense: names("dense")?,
            categorical: names("categorical")?,
        };
        schema.check()?;
        Ok(schema)
    }

    /// The schema as one line of JSON (what [`ColumnSchema::from_json`] reads).
    pub fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("label".into(), json!(self.label));
        if !self.positive.is_empty() {
            map.insert("positive".into(), json!(self.positive));
        }
        map.insert("dense".into(), json!(self.dense));
        map.insert("categorical".into(), json!(self.categorical));
        Value::Object(map).to_string()
    }

    /// Checks what a schema must hold whatever the file: a label, at least one dense and one
    /// categorical column, at most as many tables as a model file takes.
    pub fn check(&self) -> Result<()> {
        ensure!(
            !self.label.is_empty(),
            "the schema's label column has no name"
        );
        ensure!(
            !self.dense.is_empty(),
            "the schema names no dense column (a model takes at least one)"
        );
        ensure!(
            !self.categorical.is_empty(),
            "the schema names no categorical column (a model takes at least one)"
        );
        if let Some(empty) = self.positive.iter().find(|p| p.is_empty()) {
            bail!(
                "positive label value {empty:?} is empty: a missing label is an error, not a value"
            );
        }
        Ok(())
    }

    /// The schema with its patterns replaced by the names of `header` (a file's columns, in
    /// order) that they match, checked against `header`: every column present once (the label
    /// only `with_label`), none listed twice in one list, the label in neither list.
    pub fn resolve(&self, header: &[String], with_label: bool) -> Result<ColumnSchema> {
        let expand = |list: &[String], what: &str| -> Result<Vec<String>> {
            let mut out: Vec<String> = Vec::new();
            for name in list {
                let mut matched: Vec<String> = Vec::new();
                match name.strip_suffix('*') {
                    // A name the file repeats is matched once; `Layout::find` reports it.
                    Some(prefix) => {
                        for h in header {
                            if h.starts_with(prefix) && *h != self.label && !matched.contains(h) {
                                matched.push(h.clone());
                            }
                        }
                    }
                    None => matched.push(name.clone()),
                }
                ensure!(
                    !matched.is_empty(),
                    "{what} pattern `{name}` matches no column"
                );
                for m in matched {
                    ensure!(
                        m != self.label,
                        "the label column `{m}` is also a {what} column"
                    );
                    ensure!(!out.contains(&m), "column `{m}` is listed twice as {what}");
                    out.push(m);
                }
            }
            Ok(out)
        };
        let resolved = ColumnSchema {
            label: self.label.clone(),
            positive: self.positive.clone(),
            dense: expand(&self.dense, "dense")?,
            categorical: expand(&self.categorical, "categorical")?,
        };
        ensure!(
            resolved.categorical.len() <= mlet_formats::MAX_TABLES,
            "{} categorical columns; a model file takes at most {}",
            resolved.categorical.len(),
            mlet_formats::MAX_TABLES
        );
        Layout::find(&resolved, with_label, &[], header)?;
        Ok(resolved)
    }

    /// Dense values and tables per row.
    pub fn shape(&self) -> Schema {
        Schema {
            num_dense: self.dense.len(),
            num_tables: self.categorical.len(),
        }
    }
}

/// Where a schema's columns are in one file: 0-based column positions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The label column; `None` when labels are not read (scoring).
    pub label: Option<usize>,
    /// Dense columns, in model order.
    pub dense: Vec<usize>,
    /// Categorical columns, in table order.
    pub categorical: Vec<usize>,
    /// Columns carried through to scoring's output.
    pub carry: Vec<usize>,
}

impl Layout {
    /// Finds the columns of a resolved `schema` (the label only `with_label`) and `carry` in
    /// `header`; a missing column, or one that appears more than once in `header`, is an error.
    pub fn find(
        schema: &ColumnSchema,
        with_label: bool,
        carry: &[String],
        header: &[String],
    ) -> Result<Layout> {
        let position = |name: &String| -> Result<usize> {
            let mut at = header.iter().enumerate().filter(|(_, h)| *h == name);
            let Some((first, _)) = at.next() else {
                let names: Vec<&str> = header.iter().take(12).map(String::as_str).collect();
                let more = if header.len() > 12 { ", ..." } else { "" };
                bail!(
                    "no column `{name}` (the columns are {}{more})",
                    names.join(", ")
                );
            };
            if let Some((second, _)) = at.next() {
                bail!(
                    "column `{name}` appears more than once (columns {} and {})",
                    first + 1,
                    second + 1
                );
            }
            Ok(first)
        };
        let all = |names: &[String]| names.iter().map(position).collect::<Result<Vec<_>>>();
        Ok(Layout {
            label: if with_label {
                Some(position(&schema.label)?)
            } else {
                None
            },
            dense: all(&schema.dense)?,
            categorical: all(&schema.categorical)?,
            carry: all(carry)?,
        })
    }
}

/// A dense value from its text: a number (surrounding spaces allowed) parsed as f64 and rounded
/// to f32; empty is 0. Text that is not a number, and non-finite values, are errors.
pub(crate) fn dense_value(text: &[u8]) -> std::result::Result<f32, String> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return Ok(0.0);
    }
    // Fast path: up to 15 digits are exact in f64, so this is what parsing the text gives.
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let v = digits
            .iter()
            .fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
        return Ok((if negative { -v } else { v }) as f64 as f32);
    }
    let value = std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("dense value {} is not a number", shown(text)))?;
    finite(value).map_err(|_| format!("dense value {} is not finite", shown(text)))
}

/// `value` rounded to f32, or an error when either is not finite.
pub(crate) fn finite(value: f64) -> std::result::Result<f32, ()> {
    let rounded = value as f32;
    if value.is_finite() && rounded.is_finite() {
        Ok(rounded)
    } else {
        Err(())
    }
}

/// A label from its text: with `positive` values, 1 when the text is one of them and 0
/// otherwise; without, `0`/`1` or `true`/`false` (also capitalised or upper case). An empty text
/// (a missing label) is an error.
pub(crate) fn label_value(text: &[u8], positive: &[String]) -> std::result::Result<f32, String> {
    if text.is_empty() {
        return Err("the label is missing".into());
    }
    if !positive.is_empty() {
        return Ok(if positive.iter().any(|p| p.as_bytes() == text) {
            1.0
        } else {
            0.0
        });
    }
    match text {
        b"0" | b"false" | b"False" | b"FALSE" => Ok(0.0),
        b"1" | b"true" | b"True" | b"TRUE" => Ok(1.0),
        _ => Err(format!(
            "label {} is neither 0/1 nor true/false (name the positive value(s) with --positive or the schema's `positive`)",
            shown(text)
        )),
    }
}

/// Writes `v` in decimal into `buf` and returns the text: a Parquet integer's text, whose
/// FNV-1a hash is its raw id (the same as the CSV field with those digits).
pub(crate) fn decimal(negative: bool, mut v: u64, buf: &mut [u8; 21]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn json_round_trips_and_unknown_keys_are_named() {
        let text = r#"{"label":"y","positive":[">50K"],"dense":["a","b"],"categorical":["c"]}"#;
        let schema = ColumnSchema::from_json(text).unwrap();
        assert_eq!(schema.dense, names(&["a", "b"]));
        assert_eq!(ColumnSchema::from_json(&schema.to_json()).unwrap(), schema);
        let err =
            ColumnSchema::from_json(r#"{"label":"y","dense":["a"],"categorical":["c"],"extra":1}"#)
                .unwrap_err();
        assert!(err.to_string().contains("unknown key `extra`"), "{err}");
        for bad in [
            r#"{"dense":["a"],"categorical":["c"]}"#,
            r#"{"label":"y","dense":"a","categorical":["c"]}"#,
            r#"{"label":"y","dense":[],"categorical":["c"]}"#,
            r#"{"label":"y","dense":["a"],"categorical":[1]}"#,
            r#"["y"]"#,
            "not json",
        ] {
            assert!(ColumnSchema::from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_expand_in_file_order_without_the_label() {
        let header = names(&["I2", "label", "C1", "I1", "Ix", "id"]);
        let schema = ColumnSchema {
            label: "label".into(),
            positive: vec![],
            dense: names(&["I*"]),
            categorical: names(&["C*", "id"]),
        };
        let resolved = schema.resolve(&header, true).unwrap();
        assert_eq!(resolved.dense, names(&["I2", "I1", "Ix"]));
        assert_eq!(resolved.categorical, names(&["C1", "id"]));
        let everything = ColumnSchema {
            dense: names(&["*"]),
            ..schema.clone()
        };
        assert!(!everything
            .resolve(&header, true)
            .unwrap()
            .dense
            .contains(&"label".into()));
        for (dense, expected) in [
            (names(&["Z*"]), "pattern `Z*` matches no column"),
            (names(&["I1", "I*"]), "column `I1` is listed twice"),
            (
                names(&["label"]),
                "the label column `label` is also a dense column",
            ),
            (names(&["nope"]), "no column `nope`"),
        ] {
            let bad = ColumnSchema {
                dense,
                ..schema.clone()
            };
            let err = bad.resolve(&header, true).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        let twice = names(&["I1", "label", "C1", "I1"]);
        let err = schema.resolve(&twice, true).unwrap_err().to_string();
        assert!(
            err.contains("`I1` appears more than once (columns 1 and 4)"),
            "{err}"
        );
    }

    #[test]
    fn values_follow_the_rules() {
        assert_eq!(dense_value(b""), Ok(0.0));
        assert_eq!(dense_value(b" 42 "), Ok(42.0));
        assert_eq!(dense_value(b"-7"), Ok(-7.0));
        assert_eq!(dense_value(b"0.1"), Ok(0.1f64 as f32));
        assert_eq!(dense_value(b"1e3"), Ok(1000.0));
        // 16+ digits go through the f64 parser: same rounding as the integer's f64.
        assert_eq!(
            dense_value(b"12345678901234567"),
            Ok(12_345_678_901_234_567i64 as f64 as f32)
        );
        for bad in [&b"abc"[..], b"nan", b"inf", b"1e400", b"1,5", b"-"] {
            assert!(dense_value(bad).is_err(), "{:?}", bad);
        }
        assert_eq!(label_value(b"1", &[]), Ok(1.0));
        assert_eq!(label_value(b"FALSE", &[]), Ok(0.0));
        assert!(label_value(b"2", &[]).unwrap_err().contains("--positive"));
        assert!(label_value(b"", &[]).is_err());
        let positive = names(&[">50K", ">50K."]);
        assert_eq!(label_value(b">50K.", &positive), Ok(1.0));
        assert_eq!(label_value(b"<=50K", &positive), Ok(0.0));
        assert!(label_value(b"", &positive).is_err());
        let mut buf = [0u8; 21];
        assert_eq!(decimal(false, 0, &mut buf), b"0");
        assert_eq!(decimal(true, 120, &mut buf), b"-120");
        assert_eq!(decimal(false, u64::MAX, &mut buf), b"18446744073709551615");
    }
}
