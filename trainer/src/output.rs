//! Where results go: outputs checked before any work starts, text written to a file or to
//! standard output (`-`), and files written atomically.
//!
//! A file output is written to a temporary file beside the target, synced, and renamed over it,
//! so a reader sees the old file or the whole new one, never a part; on any error the old file
//! is left as it was. An existing path that is not a regular file (a directory, a device, a
//! FIFO) is refused rather than replaced, and so is a folder that does not exist or cannot be
//! written, before the work that would fill it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// True for the path `-`, which means standard output where an output allows it.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Checks that a file can be written at `path` (`what` names it in errors, e.g. `--out`): an
/// existing path must be a regular file (a symbolic link is followed), and its folder must exist
/// and take a new file (a probe file is created and removed). Returns the path to write, with
/// links resolved, so that the file behind a link is replaced and not the link.
pub fn check_file_output(path: &Path, what: &str) -> Result<PathBuf> {
    let shown = path.display();
    let path = match fs::metadata(path) {
        Ok(meta) if meta.is_file() => fs::canonicalize(path)
            .with_context(|| format!("{what} {shown}: cannot resolve the path"))?,
        Ok(meta) => bail!(
            "{what} {shown}: exists and is {}, not a regular file; give the path of a file",
            kind_of(&meta)
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => bail!("{what} {shown}: {e}"),
    };
    if path.file_name().is_none() {
        bail!("{what} {shown}: the path has no file name");
    }
    let dir = folder_of(&path);
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!("{what} {shown}: {} is not a folder", dir.display()),
        Err(_) => bail!(
            "{what} {shown}: the folder {} does not exist",
            dir.display()
        ),
    }
    let probe = temp_beside(&path, "probe");
    File::create(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .with_context(|| format!("{what} {shown}: cannot write in {}", dir.display()))?;
    Ok(path)
}

/// Checks that `dir` can hold outputs: an existing path must be a folder; a missing one is
/// created (with its parents).
pub fn check_folder_output(dir: &Path, what: &str) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) => bail!(
            "{what} {}: exists and is {}, not a folder",
            dir.display(),
            kind_of(&meta)
        ),
        Err(_) => fs::create_dir_all(dir)
            .with_context(|| format!("{what} {}: cannot create the folder", dir.display()))?,
    }
    check_file_output(&dir.join(".mlet-write-check"), what).map(|_| ())
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `.NAME.KIND<pid>` beside `path`.
fn temp_beside(path: &Path, kind: &str) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".{kind}{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `path` atomically through `fill`, which writes the content to the given buffered
/// writer; `-` writes to standard output instead.
pub fn write_streamed(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    if is_stdout(path) {
        let mut out = BufWriter::new(io::stdout().lock());
        fill(&mut out)?;
        return out.flush().context("cannot write to standard output");
    }
    write_file(path, |w| fill(w))
}

/// Writes the file `path` atomically through `fill`, which writes the content to the given
/// buffered file (a `Send` writer, as Parquet's writer needs); no standard output here.
pub fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    if path.file_name().is_none() {
        bail!("output path {} has no file name", path.display());
    }
    let tmp = temp_beside(path, "tmp");
    let result = (|| -> Result<()> {
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Whether `error` comes from writing to a pipe whose reader has gone (`mlet ... | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_that_are_not_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("mlet-output-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let err = check_file_output(&dir, "--out").unwrap_err().to_string();
        assert!(err.contains("a folder, not a regular file"), "{err}");
        let missing = dir.join("no/such/folder/m.mlet");
        let err = check_file_output(&missing, "--out")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        #[cfg(unix)]
        {
            let err = check_file_output(Path::new("/dev/null"), "--out")
                .unwrap_err()
                .to_string();
            assert!(err.contains("a device"), "{err}");
        }
        let file = dir.join("m.mlet");
        assert_eq!(check_file_output(&file, "--out").unwrap(), file);
        fs::write(&file, b"old").unwrap();
        let err = write_streamed(&file, |_| bail!("stopped")).unwrap_err();
        assert!(format!("{err:#}").contains("stopped"));
        assert_eq!(
            fs::read(&file).unwrap(),
            b"old",
            "a failed write keeps the old file"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
