//! An in-memory registry for unit tests of apply.
