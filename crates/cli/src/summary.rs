//! `summary.json`, written as the run goes (one entry per image, nothing held in memory), so a
//! run over many thousands of images stays flat in memory.

use gradcam_core::{Error, Result};
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An open summary file.
pub struct Summary {
    path: PathBuf,
    out: BufWriter<File>,
    first: bool,
}

impl Summary {
    /// Creates `path` and writes the run's description.
    pub fn create(path: &Path, run: Value) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut s = Summary {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
            first: true,
        };
        let head = format!(
            "{{\n\"run\": {},\n\"images\": [",
            serde_json::to_string(&run).expect("JSON values serialise")
        );
        s.write(&head)?;
        Ok(s)
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Appends one image's entry.
    pub fn push(&mut self, entry: &Value) -> Result<()> {
        let sep = if self.first { "\n" } else { ",\n" };
        self.first = false;
        let line = format!(
            "{sep}{}",
            serde_json::to_string(entry).expect("JSON values serialise")
        );
        self.write(&line)
    }

    /// Closes the image list with the failures and counts.
    pub fn finish(mut self, explained: usize, failed: &[(String, String)]) -> Result<()> {
        let failed: Vec<Value> = failed
            .iter()
            .map(|(f, e)| serde_json::json!({ "file": f, "error": e }))
            .collect();
        let tail = format!(
            "\n],\n\"explained\": {explained},\n\"failed\": {}\n}}\n",
            serde_json::to_string(&failed).expect("JSON values serialise")
        );
        self.write(&tail)?;
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streams_valid_json() {
        let p = std::env::temp_dir().join(format!("gradcam-summary-{}.json", std::process::id()));
        let mut s = Summary::create(&p, json!({"model": "m"})).unwrap();
        s.push(&json!({"file": "a.png"})).unwrap();
        s.push(&json!({"file": "b.png"})).unwrap();
        s.finish(2, &[("c.png".into(), "corrupt".into())]).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(v["images"][1]["file"], "b.png");
        assert_eq!(v["failed"][0]["error"], "corrupt");
        assert_eq!(v["explained"], 2);
        std::fs::remove_file(p).unwrap();
    }
}
