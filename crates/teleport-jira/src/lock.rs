//! Locking a `std::sync::Mutex` whose holder may have panicked.
//!
//! Every mutex in this crate guards data that each update leaves consistent in one statement (a
//! set, a map, a timestamp), so a panic elsewhere while it was held cannot leave it half-changed;
//! a poisoned lock is used as it is rather than spreading the panic to every later caller.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
