//! Reading `.npy` float32 matrices (NumPy's format, v1–v3), C or Fortran
//! order, every header field checked before the data is touched.

use std::path::Path;

use vecsearch::backend::synthetic::Vectors;

/// Reads a 2-D little-endian float32 `.npy` file into row-major vectors.
pub fn read(path: &Path) -> Result<Vectors, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<Vectors, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or("header runs past the end of the file")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    let descr = field(header, "descr").ok_or("header has no descr")?;
    if !matches!(
        descr.trim_matches(|c| c == '\'' || c == '"'),
        "<f4" | "=f4" | "f4"
    ) {
        return Err(format!("dtype {descr} is not little-endian float32"));
    }
    let fortran = field(header, "fortran_order").ok_or("header has no fortran_order")? == "True";
    let (rows, cols) = shape(header)?;
    let data = &bytes[start + header_len..];
    let want = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or("shape overflows")?;
    if data.len() != want {
        return Err(format!(
            "shape ({rows}, {cols}) needs {want} bytes of data, the file has {}",
            data.len()
        ));
    }
    let values: Vec<f32> = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let data = if fortran {
        transpose(&values, rows, cols)
    } else {
        values
    };
    Ok(Vectors { dim: cols, data })
}

// Column-major (rows x cols) to row-major.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; v.len()];
    for c in 0..cols {
        for r in 0..rows {
            out[r * cols + c] = v[c * rows + r];
        }
    }
    out
}

fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

fn shape(header: &str) -> Result<(usize, usize), String> {
    let at = header.find("'shape'").ok_or("header has no shape")?;
    let rest = &header[at..];
    let open = rest.find('(').ok_or("bad shape")?;
    let close = rest.find(')').ok_or("bad shape")?;
    let dims: Vec<usize> = rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape entry {s:?}"))
        })
        .collect::<Result<_, _>>()?;
    match dims[..] {
        [rows, cols] if cols > 0 => Ok((rows, cols)),
        _ => Err(format!("shape {dims:?} is not a 2-D matrix")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[f32]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        data.iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        out
    }

    #[test]
    fn c_and_fortran_order() {
        let c = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            &[1., 2., 3., 4., 5., 6.],
        );
        assert_eq!(parse(&c).unwrap().data, [1., 2., 3., 4., 5., 6.]);
        let f = npy(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            &[1., 4., 2., 5., 3., 6.],
        );
        let v = parse(&f).unwrap();
        assert_eq!((v.dim, v.data), (3, vec![1., 2., 3., 4., 5., 6.]));
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(parse(b"nope").is_err());
        let short = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }",
            &[1.0],
        );
        assert!(parse(&short).is_err());
        let f8 = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }",
            &[1.0, 2.0],
        );
        assert!(parse(&f8).is_err());
        let huge = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (18446744073709551615, 9), }",
            &[],
        );
        assert!(parse(&huge).is_err());
    }
}
