//! A latch jobs wait on until the test opens it: a job that must stay running (to fill
//! workers, to be running when something happens) holds on it. Waits at most `WAIT`.

#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};

use super::bounds::WAIT;

/// Cheap to clone; every clone opens and passes the same latch.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Lets every job waiting (and every later one) through.
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate is open; panics (failing the job) after `WAIT`.
    pub fn pass(&self) {
        let (open, cv) = &*self.0;
        let (open, _) = cv
            .wait_timeout_while(open.lock().unwrap(), WAIT, |o| !*o)
            .unwrap();
        assert!(*open, "the gate was not opened within {WAIT:?}");
    }
}
