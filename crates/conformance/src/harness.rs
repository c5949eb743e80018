//! How a backend plugs into the suite: a factory for fresh indexes, an
//! optional opener for saved files, and the executor its futures need.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use vecsearch_core::{Blocking, IndexSpec, Result, Storage, VectorIndex};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type Factory = dyn Fn(IndexSpec) -> BoxFuture<'static, Result<Box<dyn VectorIndex>>> + Send + Sync;
type Opener =
    dyn Fn(PathBuf, IndexSpec) -> BoxFuture<'static, Result<Box<dyn VectorIndex>>> + Send + Sync;
type BlockOn = dyn for<'a> Fn(BoxFuture<'a, ()>) + Send + Sync;
/// Opens a fresh index from synchronous code (see [`Harness::with_blocking_factory`]).
type BlockingFactory = dyn Fn(IndexSpec) -> Result<Blocking<dyn VectorIndex>> + Send + Sync;

/// A backend under test.
#[derive(Clone)]
pub struct Harness {
    pub(crate) name: String,
    pub(crate) factory: Arc<Factory>,
    pub(crate) opener: Option<Arc<Opener>>,
    pub(crate) block_on: Arc<BlockOn>,
    pub(crate) scale: f64,
    pub(crate) blocking_factory: Option<Arc<BlockingFactory>>,
    /// The backend's capabilities, probed once per run (for a server, a
    /// probe is a collection).
    pub(crate) caps: Arc<OnceLock<vecsearch_core::Capabilities>>,
    /// The storage kind every fresh index gets.
    pub(crate) storage: Storage,
}

impl Harness {
    /// A backend called `name` (printed in every line) whose `factory` makes a
    /// fresh, empty index for a spec. Each case calls it with its own spec;
    /// remote factories should use a new collection each time.
    pub fn new<F, Fut>(name: &str, factory: F) -> Self
    where
        F: Fn(IndexSpec) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Box<dyn VectorIndex>>> + Send + 'static,
    {
        Harness {
            name: name.to_string(),
            factory: Arc::new(move |spec| Box::pin(factory(spec))),
            opener: None,
            block_on: Arc::new(|fut| vecsearch_core::exec::block_on(fut)),
            scale: 1.0,
            caps: Arc::default(),
            blocking_factory: None,
            storage: Storage::F32,
        }
    }

    /// How to open a file written by `save` (local backends): enables the
    /// persistence cases.
    pub fn with_opener<F, Fut>(mut self, opener: F) -> Self
    where
        F: Fn(PathBuf, IndexSpec) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Box<dyn VectorIndex>>> + Send + 'static,
    {
        self.opener = Some(Arc::new(move |p, s| Box::pin(opener(p, s))));
        self
    }

    /// How a plain thread drives one of the backend's futures to completion
    /// (the concurrency case runs several threads). The default is
    /// `vecsearch_core::exec::block_on`, enough for local backends; a remote
    /// backend passes its Tokio runtime's `Handle::block_on`.
    pub fn with_block_on<B>(mut self, block_on: B) -> Self
    where
        B: for<'a> Fn(BoxFuture<'a, ()>) + Send + Sync + 'static,
    {
        self.block_on = Arc::new(block_on);
        self
    }

    /// Scales the sizes of the large cases (recall, churn) by `factor`; a
    /// remote backend over a slow link may pass less than 1. Recall cases
    /// never go below 20,000 points, the contract's size.
    pub fn with_scale(mut self, factor: f64) -> Self {
        self.scale = factor;
        self
    }

    /// How synchronous code opens a fresh, empty index for a spec, as a user
    /// would (`vecsearch::open_blocking(uri, spec)`): called on a plain
    /// thread with no async runtime. Enables the `blocking_without_runtime`
    /// case; a local backend can pass `|spec| Ok(Blocking::new(Box::new(...)))`.
    pub fn with_blocking_factory<F>(mut self, factory: F) -> Self
    where
        F: Fn(IndexSpec) -> Result<Blocking<dyn VectorIndex>> + Send + Sync + 'static,
    {
        self.blocking_factory = Some(Arc::new(factory));
        self
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same backend with every fresh index stored as `storage` (named
    /// `backend/storage` in the log). [`run_main`](crate::run_main) runs the
    /// storage-sensitive cases so for every kind the backend declares.
    pub fn with_storage(mut self, storage: Storage) -> Self {
        if storage != Storage::F32 {
            self.name = format!("{}/{storage}", self.name.split('/').next().unwrap_or(""));
        }
        self.storage = storage;
        self
    }

    /// The storage kind fresh indexes get.
    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// A fresh index for `spec`, stored as this harness's kind.
    pub async fn create(&self, spec: IndexSpec) -> Result<Box<dyn VectorIndex>> {
        (self.factory)(spec.with_storage(self.storage)).await
    }
}
