//! Parsing `qdrant://` and `milvus://` URIs into what a client needs.

use vecsearch_core::{Error, Result};

/// Which kind of server a URI names (`qdrant://` or `milvus://`). Not to be
/// confused with `vecsearch_core::Engine`, the trait a backend implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// Qdrant's REST API (default port 6333).
    Qdrant,
    /// Milvus's REST API (default port 19530).
    Milvus,
}

impl Server {
    fn default_port(self) -> u16 {
        match self {
            Server::Qdrant => 6333,
            Server::Milvus => 19530,
        }
    }

    fn key_env(self) -> &'static str {
        match self {
            Server::Qdrant => "VECSEARCH_QDRANT_API_KEY",
            Server::Milvus => "VECSEARCH_MILVUS_TOKEN",
        }
    }
}

/// A parsed remote URI: `scheme[+https]://[key@]host[:port]/collection[?api_key=..]`.
#[derive(Clone)]
pub struct Endpoint {
    /// The server kind.
    pub server: Server,
    /// Whether to speak HTTPS.
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port of the REST API.
    pub port: u16,
    /// The collection the index lives in.
    pub collection: String,
    /// The API key (Qdrant) or token (Milvus), if any.
    pub api_key: Option<String>,
    /// Milvus 2.3 only: port of the management API that creates collections
    /// with caller-chosen ids (`?mgmt_port=`, default 9091).
    pub mgmt_port: u16,
    /// Per-request timeout (`?timeout_ms=`, default 30 000).
    pub timeout_ms: u64,
    /// Attempts for a request that failed to connect or got a 5xx (`?retries=`, default 4).
    pub attempts: u32,
    /// Qdrant only, used when the collection is created: segments holding
    /// more than this many KB of vectors get an HNSW graph
    /// (`?indexing_threshold_kb=`; default: the server's, 10 000 in 1.18).
    /// Below it Qdrant answers by exact scan; 1 makes it index everything.
    pub indexing_threshold_kb: Option<u64>,
    /// Qdrant only, used when the collection is created: segments holding
    /// fewer KB of vectors than this are searched by exact scan even when
    /// they have a graph (`?full_scan_threshold_kb=`, at least 10; default:
    /// the server's, 10 000 in 1.18).
    pub full_scan_threshold_kb: Option<u64>,
}

// The key stays out of logs and error messages.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("server", &self.server)
            .field("base", &self.base_url())
            .field("collection", &self.collection)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Endpoint {
    /// Parses `uri`, which must name `server` (`InvalidArgument` otherwise).
    pub fn parse_as(uri: &str, server: Server) -> Result<Self> {
        let ep = Endpoint::parse(uri)?;
        if ep.server != server {
            let scheme = match server {
                Server::Qdrant => "qdrant",
                Server::Milvus => "milvus",
            };
            return Err(Error::InvalidArgument(format!(
                "{uri:?} is not a {scheme}:// URI"
            )));
        }
        Ok(ep)
    }

    /// Parses `uri`; the key comes from the URI, else from the server's
    /// environment variable (`VECSEARCH_QDRANT_API_KEY`, `VECSEARCH_MILVUS_TOKEN`).
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidArgument(format!("bad remote URI: {why}"));
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host/collection"))?;
        // The one scheme table (vecsearch-core's `uri`) names the server.
        let known = vecsearch_core::uri::scheme(scheme)
            .filter(|s| s.kind == vecsearch_core::uri::Kind::Remote);
        let (server, https) = match known.map(|s| (s.backend, s.https)) {
            Some(("qdrant", https)) => (Server::Qdrant, https),
            Some(("milvus", https)) => (Server::Milvus, https),
            _ => {
                return Err(bad(&format!(
                    "unknown scheme {scheme:?} (qdrant://, milvus://, with +https for TLS)"
                )))
            }
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u)?), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport, server.default_port()).map_err(|m| bad(&m))?;
        let collection = percent_decode(path.trim_end_matches('/'))?;
        check_collection_name(&collection).map_err(|m| bad(&m))?;
        let mut ep = Endpoint {
            server,
            https,
            host,
            port,
            collection,
            api_key: userinfo.filter(|u| !u.is_empty()),
            mgmt_port: 9091,
            timeout_ms: 30_000,
            attempts: 4,
            indexing_threshold_kb: None,
            full_scan_threshold_kb: None,
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)?;
            let num = |what: &str| -> Result<u64> {
                v.parse::<u64>()
                    .map_err(|_| bad(&format!("{what} must be a number, got {v:?}")))
            };
            match k {
                "api_key" | "token" => ep.api_key = Some(v.clone()),
                "mgmt_port" => {
                    ep.mgmt_port = u16::try_from(num("mgmt_port")?)
                        .map_err(|_| bad("mgmt_port out of range"))?
                }
                "timeout_ms" => ep.timeout_ms = num("timeout_ms")?.max(1),
                "retries" => ep.attempts = num("retries")?.clamp(1, 20) as u32,
                "indexing_threshold_kb" if server == Server::Qdrant => {
                    ep.indexing_threshold_kb = Some(num("indexing_threshold_kb")?)
                }
                "full_scan_threshold_kb" if server == Server::Qdrant => {
                    ep.full_scan_threshold_kb = Some(num("full_scan_threshold_kb")?.max(10))
                }
                other => return Err(bad(&format!("unknown option {other:?}"))),
            }
        }
        if ep.api_key.is_none() {
            ep.api_key = std::env::var(server.key_env())
                .ok()
                .filter(|k| !k.is_empty());
        }
        Ok(ep)
    }

    /// `http[s]://host:port` of the REST API.
    pub fn base_url(&self) -> String {
        self.url_with_port(self.port)
    }

    /// The same host on another port (Milvus's management API).
    pub fn url_with_port(&self, port: u16) -> String {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{port}", self.host)
        } else {
            format!("{scheme}://{}:{port}", self.host)
        }
    }
}

fn split_host_port(s: &str, default: u16) -> std::result::Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("unclosed [ in host")?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Err(format!("bad host {host:?}"));
    }
    let port = match port {
        None => default,
        Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
    };
    Ok((host.to_string(), port))
}

/// Collection names both servers accept and that need no escaping in a URL path.
fn check_collection_name(name: &str) -> std::result::Result<(), String> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || name.len() > 255 {
        return Err(format!(
            "collection name {name:?} must start with a letter or _ and have at most 255 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "collection name {name:?} has {c:?}: only letters, digits and _ are allowed"
        ));
    }
    Ok(())
}

fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| Error::InvalidArgument("bad %-escape in URI".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Error::InvalidArgument("URI escape is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        let e = Endpoint::parse("qdrant://localhost/vecs").unwrap();
        assert_eq!((e.server, e.https, e.port), (Server::Qdrant, false, 6333));
        assert_eq!(e.base_url(), "http://localhost:6333");
        let e = Endpoint::parse("milvus+https://root:s3cr%40t@db.example:443/c_1?timeout_ms=500")
            .unwrap();
        assert_eq!((e.server, e.https, e.port), (Server::Milvus, true, 443));
        assert_eq!(e.api_key.as_deref(), Some("root:s3cr@t"));
        assert_eq!(e.timeout_ms, 500);
        assert!(!format!("{e:?}").contains("s3cr"));
        let e = Endpoint::parse("qdrant+https://[::1]:6334/c?api_key=k%20y").unwrap();
        assert_eq!(e.base_url(), "https://[::1]:6334");
        assert_eq!(e.api_key.as_deref(), Some("k y"));
        assert_eq!(e.indexing_threshold_kb, None);
        let e = Endpoint::parse("qdrant://h/c?indexing_threshold_kb=1&full_scan_threshold_kb=1")
            .unwrap();
        assert_eq!(e.indexing_threshold_kb, Some(1));
        assert_eq!(e.full_scan_threshold_kb, Some(10), "Qdrant's least");
    }

    #[test]
    fn rejects_bad_uris() {
        for uri in [
            "qdrant:/x/c",
            "redis://h/c",
            "qdrant://h:99999/c",
            "qdrant://h/",
            "qdrant://h/a/b",
            "qdrant://h/9c",
            "milvus://h/c?bogus=1",
            "milvus://h/c?indexing_threshold_kb=1",
            "milvus://h/c?full_scan_threshold_kb=10",
            "qdrant://h/c?indexing_threshold_kb=-1",
            "milvus://h/c%zz",
            "milvus:///c",
        ] {
            assert!(
                matches!(Endpoint::parse(uri), Err(Error::InvalidArgument(_))),
                "{uri}"
            );
        }
    }
}
