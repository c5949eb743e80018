//! How a case ends: the verdict types every case and the reports share.

use vecsearch_core::Error;

use crate::harness::BoxFuture;
use crate::Harness;

/// Why a case did not pass.
#[derive(Debug)]
pub enum Why {
    /// The rule was broken.
    Fail(String),
    /// A capability the case needs is declared missing.
    Skip(String),
}

impl From<Error> for Why {
    fn from(e: Error) -> Self {
        Why::Fail(format!("unexpected error: {e}"))
    }
}

/// What a case returns.
pub type Case = Result<(), Why>;

/// A case as a function pointer.
pub type CaseFn = for<'a> fn(&'a Harness) -> BoxFuture<'a, Case>;

/// A failure with this message.
pub(crate) fn fail(msg: impl Into<String>) -> Why {
    Why::Fail(msg.into())
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        let held: bool = $cond;
        if !held {
            return Err(fail(format!($($msg)+)));
        }
    };
}
