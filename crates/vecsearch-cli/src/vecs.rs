//! The TEXMEX formats of SIFT1M and friends: `.fvecs` (f32), `.bvecs` (u8),
//! `.ivecs` (i32, ground truth): each vector is a little-endian i32 dimension
//! followed by its components.

use std::path::Path;

use vecsearch::backend::synthetic::Vectors;

/// Reads `.fvecs` or `.bvecs` (chosen by extension) as f32 vectors.
pub fn read_vectors(path: &Path) -> Result<Vectors, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let width = match path.extension().and_then(|e| e.to_str()) {
        Some("bvecs") => 1,
        _ => 4,
    };
    let rows = parse(&bytes, width).map_err(|e| format!("{}: {e}", path.display()))?;
    let dim = rows.first().map_or(0, Vec::len);
    let data = rows
        .into_iter()
        .flat_map(|r| {
            r.into_iter().map(move |b| {
                if width == 1 {
                    f32::from(b[0])
                } else {
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                }
            })
        })
        .collect();
    Ok(Vectors { dim, data })
}

/// Reads `.ivecs` (e.g. ground-truth neighbour lists).
pub fn read_ivecs(path: &Path) -> Result<Vec<Vec<u64>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let rows = parse(&bytes, 4).map_err(|e| format!("{}: {e}", path.display()))?;
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|b| {
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    u64::try_from(v).map_err(|_| format!("negative id {v} in {}", path.display()))
                })
                .collect()
        })
        .collect()
}

/// Writes `.ivecs`.
pub fn write_ivecs(path: &Path, rows: &[Vec<u64>]) -> Result<(), String> {
    let mut out = Vec::new();
    for r in rows {
        out.extend_from_slice(&(r.len() as i32).to_le_bytes());
        for &id in r {
            let id = i32::try_from(id).map_err(|_| format!("id {id} does not fit ivecs"))?;
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    std::fs::write(path, out).map_err(|e| format!("writing {}: {e}", path.display()))
}

// Every row: i32 dim, then dim items of `width` bytes; all rows one dim.
fn parse(bytes: &[u8], width: usize) -> Result<Vec<Vec<&[u8]>>, String> {
    let mut rows = Vec::new();
    let mut pos = 0;
    let mut dim0 = None;
    while pos < bytes.len() {
        let head = bytes.get(pos..pos + 4).ok_or("a row header is cut off")?;
        let dim = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let dim = usize::try_from(dim)
            .ok()
            .filter(|&d| d > 0 && d <= 1 << 16)
            .ok_or(format!("bad dimension {dim}"))?;
        if *dim0.get_or_insert(dim) != dim {
            return Err(format!(
                "row {} has dimension {dim}, not {}",
                rows.len(),
                dim0.unwrap_or(0)
            ));
        }
        let body = bytes
            .get(pos + 4..pos + 4 + dim * width)
            .ok_or("the last row is cut off")?;
        rows.push(body.chunks_exact(width).collect());
        pos += 4 + dim * width;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivecs_round_trip_and_damage() {
        let p = std::env::temp_dir().join(format!("vs-cli-{}.ivecs", std::process::id()));
        write_ivecs(&p, &[vec![1, 2, 3], vec![4, 5, 6]]).unwrap();
        assert_eq!(read_ivecs(&p).unwrap(), vec![vec![1, 2, 3], vec![4, 5, 6]]);
        let mut b = std::fs::read(&p).unwrap();
        b.pop();
        assert!(parse(&b, 4).is_err());
        assert!(parse(&[0, 0, 0, 0x80], 4).is_err());
        std::fs::remove_file(p).unwrap();
    }
}
