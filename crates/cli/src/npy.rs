//! Reading `.npy` files holding float32 or float64 arrays (C order).

use gradcam_core::{Error, HostTensor, Result};

/// Parses a `.npy` file's bytes into a float32 host tensor.
pub fn parse(bytes: &[u8], source: &str) -> Result<HostTensor> {
    let bad = |m: &str| Error::Input(format!("{source}: not a readable .npy file ({m})"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing magic"));
    }
    let (hlen, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Err(bad("unknown version")),
    };
    let header = bytes
        .get(
            start
                ..start
                    .checked_add(hlen)
                    .ok_or_else(|| bad("header length"))?,
        )
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let i = header.find(key).ok_or_else(|| bad(&format!("no {key}")))?;
        Ok(header[i + key.len()..].trim_start_matches([' ', ':', '\'']))
    };
    let descr = field("'descr'")?;
    let width = if descr.starts_with("<f4") {
        4
    } else if descr.starts_with("<f8") {
        8
    } else {
        return Err(bad(
            "only little-endian float32/float64 arrays are supported",
        ));
    };
    if field("'fortran_order'")?.starts_with("True") {
        return Err(bad("Fortran-ordered arrays are not supported"));
    }
    let shape_txt = field("'shape'")?;
    let open = shape_txt.find('(').ok_or_else(|| bad("shape"))?;
    let close = shape_txt.find(')').ok_or_else(|| bad("shape"))?;
    let shape = shape_txt[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("shape")))
        .collect::<Result<Vec<_>>>()?;
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let body = &bytes[start + hlen..];
    if body.len()
        != numel
            .checked_mul(width)
            .ok_or_else(|| bad("shape overflows"))?
    {
        return Err(bad(&format!(
            "{} data bytes for shape {shape:?} of {width}-byte floats",
            body.len()
        )));
    }
    let data = if width == 4 {
        body.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect()
    };
    HostTensor::new(shape, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h.as_bytes());
        v.extend(body);
        v
    }

    #[test]
    fn reads_float32_and_float64() {
        let body: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = parse(&npy("<f4", "(1, 2, 3)", &body), "x").unwrap();
        assert_eq!(t.shape.dims(), [1, 2, 3]);
        assert_eq!(t.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let body: Vec<u8> = [0.5f64, -1.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            parse(&npy("<f8", "(2,)", &body), "x").unwrap().data,
            vec![0.5, -1.5]
        );
    }

    #[test]
    fn rejects_truncated_and_foreign_files() {
        let body: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(parse(&npy("<f4", "(1, 3)", &body), "x").is_err());
        assert!(parse(&npy("<i8", "(2,)", &body), "x").is_err());
        assert!(parse(b"not numpy at all", "x").is_err());
        assert!(parse(&npy("<f4", "(1, 3)", &body)[..12], "x").is_err());
    }
}
