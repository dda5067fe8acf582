//! Streamed writes (`std`): a safetensors file whose header is laid out first, from each
//! tensor's name, dtype and shape, and whose data the caller then writes tensor by tensor, in
//! pieces of any size, into a temporary file beside the target. The finished temporary file is
//! checked (a model file by the reader, through a memory map, so only its header is read) before
//! it is renamed over the target. Memory holds one piece at a time, never the file: this is how
//! tables larger than the machine's free memory are exported and checkpointed.
//!
//! Tensors are laid out by element size, largest first, then by name, so F32 data starts at a
//! multiple of 4 and F16 data at a multiple of 2 (the data section starts at a multiple of 8).

use std::fmt::Write as _;
use std::format;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use crate::model_file::Dtype;

/// One tensor of a [`Layout`], where it lies in the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The tensor's name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
    /// Where its bytes start in the data section.
    pub start: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// The header and the places of every tensor of a file to be written.
#[derive(Clone, Debug)]
pub struct Layout {
    header: Vec<u8>,
    tensors: Vec<Planned>,
    data_len: u64,
}

impl Layout {
    /// Lays out `tensors` (name, dtype, shape; any order) with the string `metadata` (sorted by
    /// key in the header). A name given twice is refused.
    pub fn new(
        metadata: &[(String, String)],
        tensors: Vec<(String, Dtype, Vec<usize>)>,
    ) -> Result<Layout, String> {
        let mut tensors = tensors;
        tensors.sort_by(|a, b| b.1.size().cmp(&a.1.size()).then_with(|| a.0.cmp(&b.0)));
        let mut names: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
            return Err(format!("tensor `{}` is given twice", pair[0]));
        }
        let mut start = 0u64;
        let mut planned = Vec::with_capacity(tensors.len());
        for (name, dtype, shape) in tensors {
            let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
            let len = elements
                .and_then(|n| n.checked_mul(dtype.size() as u64))
                .ok_or_else(|| format!("tensor `{name}`: shape {shape:?} is too large"))?;
            planned.push(Planned {
                name,
                dtype,
                shape,
                start,
                len,
            });
            start += len;
        }
        let mut metadata: Vec<&(String, String)> = metadata.iter().collect();
        metadata.sort();
        if let Some(pair) = metadata.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(format!("metadata key `{}` is given twice", pair[0].0));
        }
        let mut json = String::from("{\"__metadata__\":{");
        for (i, (key, value)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            push_string(&mut json, key);
            json.push(':');
            push_string(&mut json, value);
        }
        json.push('}');
        for t in &planned {
            json.push(',');
            push_string(&mut json, &t.name);
            let shape: Vec<String> = t.shape.iter().map(usize::to_string).collect();
            let _ = write!(
                json,
                ":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                t.dtype.as_str(),
                shape.join(","),
                t.start,
                t.start + t.len
            );
        }
        json.push('}');
        while json.len() % 8 != 0 {
            json.push(' ');
        }
        Ok(Layout {
            header: json.into_bytes(),
            tensors: planned,
            data_len: start,
        })
    }

    /// The tensors in file order.
    pub fn tensors(&self) -> &[Planned] {
        &self.tensors
    }

    /// Bytes of the whole file.
    pub fn file_len(&self) -> u64 {
        8 + self.header.len() as u64 + self.data_len
    }

    /// Bytes of the length prefix and the header.
    pub fn header_len(&self) -> u64 {
        8 + self.header.len() as u64
    }
}

/// `s` as a JSON string: quoted, with `"`, `\` and control characters escaped.
fn push_string(json: &mut String, s: &str) {
    json.push('"');
    for c in s.chars() {
        match c {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(json, "\\u{:04x}", c as u32);
            }
            c => json.push(c),
        }
    }
    json.push('"');
}

/// Counts the bytes written to a tensor, so that a tensor filled short or long is an error
/// rather than a shifted file.
struct Counted<'w> {
    inner: &'w mut BufWriter<File>,
    written: u64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the file of `layout` to `path` atomically: `fill` is called once per tensor, in file
/// order, and writes exactly that tensor's bytes (little-endian) in as many pieces as it likes;
/// `check` then sees the complete temporary file, synced, and an error from it keeps the file
/// from replacing `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_file<E: From<io::Error>>(
    path: &Path,
    layout: &Layout,
    mut fill: impl FnMut(&Planned, &mut dyn Write) -> Result<(), E>,
    check: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = temp_beside(path)?;
    let result = (|| -> Result<(), E> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        out.write_all(&(layout.header.len() as u64).to_le_bytes())?;
        out.write_all(&layout.header)?;
        for tensor in &layout.tensors {
            let mut counted = Counted {
                inner: &mut out,
                written: 0,
            };
            fill(tensor, &mut counted)?;
            if counted.written != tensor.len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "tensor `{}`: {} bytes written, its shape needs {}",
                        tensor.name, counted.written, tensor.len
                    ),
                )
                .into());
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        check(&tmp)?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `.NAME.tmp<pid>` beside `path`.
fn temp_beside(path: &Path) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
    })?;
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp{}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::ToOwned;
    use std::vec;

    #[test]
    fn a_streamed_file_is_the_safetensors_file_of_its_tensors() {
        let dir = std::env::temp_dir().join(format!("mlet-stream-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.safetensors");
        let meta = vec![
            ("b".to_owned(), "quote \" and \\ and \n".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ];
        let layout = Layout::new(
            &meta,
            vec![
                ("codes".into(), Dtype::U8, vec![3]),
                ("w".into(), Dtype::F32, vec![2, 2]),
                ("h".into(), Dtype::F16, vec![1]),
            ],
        )
        .unwrap();
        let order: Vec<&str> = layout.tensors().iter().map(|t| t.name.as_str()).collect();
        assert_eq!(order, ["w", "h", "codes"]);
        write_file::<io::Error>(
            &path,
            &layout,
            |t, out| {
                // Written in pieces of one element.
                let size = t.dtype.size();
                for i in 0..t.len as usize / size {
                    out.write_all(&vec![i as u8 + 1; size])?;
                }
                Ok(())
            },
            |_| Ok(()),
        )
        .unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, layout.file_len());
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            file.tensor("w").unwrap().data(),
            &[1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]
        );
        assert_eq!(file.tensor("codes").unwrap().data(), &[1, 2, 3]);
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let m = header.metadata().clone().unwrap();
        assert_eq!(m["b"], "quote \" and \\ and \n");

        // A tensor filled short, or a failing check, leaves the earlier file.
        fs::write(&path, b"earlier").unwrap();
        let short =
            write_file::<io::Error>(&path, &layout, |_, out| out.write_all(&[0]), |_| Ok(()));
        assert!(short.unwrap_err().to_string().contains("1 bytes written"));
        let refused = write_file::<io::Error>(
            &path,
            &layout,
            |t, out| out.write_all(&vec![0; t.len as usize]),
            |_| Err(io::Error::other("refused")),
        );
        assert!(refused.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"earlier");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();

        assert!(Layout::new(&[], vec![("x".into(), Dtype::U8, vec![1]); 2]).is_err());
        let twice = vec![
            ("k".to_owned(), "1".to_owned()),
            ("k".to_owned(), "2".to_owned()),
        ];
        assert!(Layout::new(&twice, vec![]).is_err());
    }
}
