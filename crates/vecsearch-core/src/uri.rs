//! The URI schemes an index is opened by, in one table that the facade's
//! `open`, the remote URI parser and the command line all read, and the
//! parsing of a local URI's path and mode.
//!
//! | URI | meaning |
//! |---|---|
//! | `native:` | a new, empty index in memory |
//! | `native:/path/file` | the index saved at that path; `Io` (not found) if there is none |
//! | `native:/path/file?mode=rwc` | the index saved there, or a new empty one if there is none yet |
//! | `qdrant://host:6333/collection` | a collection on a server (see the remote crate) |
//!
//! `mode=rw` (the default) needs the file; `mode=rwc` may create it, as in
//! sqlx's SQLite URIs: a typo in a path is an error, never a silently empty
//! index that overwrites nothing until the next save loses the data.

use std::path::PathBuf;

use crate::{Error, Result};

/// Where a scheme's index lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// In this process (optionally saved to a file).
    Local,
    /// On a server, over HTTP.
    Remote,
}

/// One URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// The scheme as written before `:`.
    pub name: &'static str,
    /// The backend it opens (`flat`, `native`, `hnswlib`, `qdrant`, `milvus`).
    pub backend: &'static str,
    /// The Cargo feature of the `vecsearch` crate it needs (`None`: always there).
    pub feature: Option<&'static str>,
    /// Local or remote.
    pub kind: Kind,
    /// Remote only: whether it speaks HTTPS.
    pub https: bool,
}

const fn local(name: &'static str, feature: Option<&'static str>) -> Scheme {
    Scheme {
        name,
        backend: name,
        feature,
        kind: Kind::Local,
        https: false,
    }
}

const fn remote(name: &'static str, backend: &'static str, https: bool) -> Scheme {
    Scheme {
        name,
        backend,
        feature: Some("remote"),
        kind: Kind::Remote,
        https,
    }
}

/// Every scheme `vecsearch::open` takes.
pub const SCHEMES: &[Scheme] = &[
    local("flat", None),
    local("native", Some("native")),
    local("hnswlib", Some("hnswlib")),
    remote("qdrant", "qdrant", false),
    remote("qdrant+http", "qdrant", false),
    remote("qdrant+https", "qdrant", true),
    remote("milvus", "milvus", false),
    remote("milvus+http", "milvus", false),
    remote("milvus+https", "milvus", true),
];

/// The scheme named `name` (any case).
pub fn scheme(name: &str) -> Option<&'static Scheme> {
    SCHEMES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// Splits `uri` into its scheme and the rest after the `:`.
pub fn split(uri: &str) -> Result<(&'static Scheme, &str)> {
    let (name, rest) = uri.split_once(':').ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{uri:?} is not an index URI: expected scheme:..., e.g. native: or qdrant://host:6333/name"
        ))
    })?;
    let scheme = scheme(name).ok_or_else(|| {
        let names: Vec<&str> = SCHEMES.iter().map(|s| s.name).collect();
        Error::InvalidArgument(format!(
            "unknown index scheme {name:?}: expected one of {}",
            names.join(", ")
        ))
    })?;
    Ok((scheme, rest))
}

/// What a local URI names: nothing (a new index in memory), or a file and
/// whether it may be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    /// The file, if the URI names one.
    pub path: Option<PathBuf>,
    /// `mode=rwc`: start an empty index when the file does not exist yet.
    pub create: bool,
}

/// Parses the part of a local URI after `scheme:` (`/path?mode=rwc`).
pub fn local_target(rest: &str) -> Result<LocalTarget> {
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut create = false;
    for opt in query.into_iter().flat_map(|q| q.split('&')) {
        match opt {
            "mode=rw" => create = false,
            "mode=rwc" => create = true,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown option {other:?} in a local index URI: expected mode=rw (the file must exist) or mode=rwc (create it)"
                )))
            }
        }
    }
    Ok(LocalTarget {
        path: (!path.is_empty()).then(|| PathBuf::from(path)),
        create,
    })
}

impl LocalTarget {
    /// The file to open, `None` for a new index; an `Io` not-found error,
    /// naming the path, when the file is missing and creation was not asked.
    pub fn existing(&self) -> Result<Option<&std::path::Path>> {
        match &self.path {
            None => Ok(None),
            Some(p) if p.exists() => Ok(Some(p)),
            Some(_) if self.create => Ok(None),
            Some(p) => Err(Error::io(
                "opening",
                p,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no saved index there (add ?mode=rwc to the URI to start a new one)",
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_modes() {
        assert_eq!(split("native:").unwrap().0.backend, "native");
        assert!(split("QDRANT+HTTPS://h/c").unwrap().0.https);
        assert!(matches!(split("nope:x"), Err(Error::InvalidArgument(_))));
        assert!(matches!(split("native"), Err(Error::InvalidArgument(_))));
        let t = local_target("/tmp/x.vs?mode=rwc").unwrap();
        assert_eq!(
            (t.path.unwrap(), t.create),
            (PathBuf::from("/tmp/x.vs"), true)
        );
        assert!(local_target("/x?mode=ro").is_err());
        let missing = local_target("/definitely/not/here.vs").unwrap();
        assert!(matches!(missing.existing(), Err(Error::Io { .. })));
        let created = local_target("/definitely/not/here.vs?mode=rwc").unwrap();
        assert!(matches!(created.existing(), Ok(None)));
    }
}
