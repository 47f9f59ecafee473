//! `--labels FILE`: class names, one per line, in logit order.

use gradcam_core::{Error, Result};
use std::path::Path;

/// Reads a labels file: one name per line (surrounding spaces trimmed, trailing empty lines
/// dropped). An empty file is an error.
pub fn read(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    while names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    if names.is_empty() {
        return Err(Error::Input(format!(
            "{}: the labels file is empty",
            path.display()
        )));
    }
    Ok(names)
}

/// The labels to use with a model of `classes` outputs: `None`, with a warning, when the
/// file's count differs (the run goes on with class numbers).
pub fn check(labels: Option<Vec<String>>, classes: usize) -> (Option<Vec<String>>, Option<String>) {
    match labels {
        Some(l) if l.len() != classes => {
            let warning = format!(
                "the labels file has {} names but the model has {classes} classes: using class numbers",
                l.len()
            );
            (None, Some(warning))
        }
        other => (other, None),
    }
}
