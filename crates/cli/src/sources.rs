//! What `--input` names: image files, directories of images, glob patterns, or tensor files
//! (`.safetensors[:NAME]`, `.npy`) holding an already-normalised batch.

use gradcam_core::{Error, Result};
use std::path::{Path, PathBuf};

/// Extensions read as images (decoding goes by content, not name).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An image file (it may still turn out unreadable; that is reported per file).
    Image(PathBuf),
    /// A tensor file spec, loaded as one batch.
    Tensor(String),
}

fn is_tensor(spec: &str) -> bool {
    let lower = spec.to_ascii_lowercase();
    lower.ends_with(".npy") || lower.ends_with(".safetensors") || lower.contains(".safetensors:")
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands every `--input` spec, in order: a directory gives its image files (sorted, not
/// recursive), a pattern with `*`, `?` or `[` (that is not itself an existing file) its image
/// matches (sorted), anything else itself. A directory without images or a pattern matching
/// none is an error.
pub fn expand(specs: &[String]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for spec in specs {
        if is_tensor(spec) {
            out.push(Source::Tensor(spec.clone()));
            continue;
        }
        let p = Path::new(spec);
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && is_image_name(f))
                .collect();
            if files.is_empty() {
                return Err(Error::Input(format!(
                    "{spec}: the directory holds no {} files",
                    IMAGE_EXTENSIONS.join("/")
                )));
            }
            files.sort();
            out.extend(files.into_iter().map(Source::Image));
        } else if spec.contains(['*', '?', '[']) && !p.is_file() {
            let paths = glob::glob(spec)
                .map_err(|e| Error::InvalidArgument(format!("{spec}: bad pattern ({e})")))?;
            let mut files: Vec<PathBuf> = paths
                .filter_map(|p| p.ok())
                .filter(|f| f.is_file() && is_image_name(f))
                .collect();
            if files.is_empty() {
                return Err(Error::Input(format!("{spec}: no file matches")));
            }
            files.sort();
            out.extend(files.into_iter().map(Source::Image));
        } else {
            out.push(Source::Image(p.to_path_buf()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_patterns_and_tensors() {
        let dir = std::env::temp_dir().join(format!("gradcam-sources-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.png", "a.JPG", "notes.txt"] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let d = dir.display().to_string();
        let got = expand(&[
            d.clone(),
            format!("{d}/*.png"),
            "x.safetensors:input".into(),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                Source::Image(dir.join("a.JPG")),
                Source::Image(dir.join("b.png")),
                Source::Image(dir.join("b.png")),
                Source::Tensor("x.safetensors:input".into()),
            ]
        );
        assert!(expand(&[format!("{d}/*.gif")]).is_err());
        // Globs keep image files only; a file whose name looks like a pattern is itself.
        assert_eq!(expand(&[format!("{d}/*")]).unwrap().len(), 2);
        std::fs::write(dir.join("p[1].png"), b"x").unwrap();
        let literal = format!("{d}/p[1].png");
        assert_eq!(
            expand(std::slice::from_ref(&literal)).unwrap(),
            vec![Source::Image(literal.into())]
        );
        assert_eq!(
            expand(&["nope.png".into()]).unwrap(),
            vec![Source::Image("nope.png".into())]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
