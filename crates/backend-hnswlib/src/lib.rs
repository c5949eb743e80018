//! hnswlib 0.8.0 (C++) through cxx (in progress).
