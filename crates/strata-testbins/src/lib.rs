//! The messages the test programs and the tests that start them speak, defined once.

use serde::{Deserialize, Serialize};
use strata::{Address, Message};

/// What `link_peer` and the link tests exchange.
pub mod link {
    use super::*;

    /// Asks for an x-by-y table.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "test.Xy")]
    pub struct Xy {
        /// Columns.
        pub x: usize,
        /// Rows.
        pub y: usize,
    }

    /// Asks the peer to ask `to` for an x-by-y table and answer with what came back.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "test.Call")]
    pub struct Call {
        /// Who the peer asks.
        pub to: Address,
        /// Columns.
        pub x: usize,
        /// Rows.
        pub y: usize,
    }

    /// A recursive message (a chain of any length): hostile peers nest it past any stack.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
    #[message(name = "test.Chain")]
    pub struct Chain(pub Option<Box<Chain>>);

    /// A message of no bytes: a list of them may claim any length for free.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Message)]
    #[message(name = "test.Nothing")]
    pub struct Nothing;

    /// Asks the peer to answer with the length of the chain.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Message)]
    #[message(name = "test.Measure")]
    pub struct Measure(pub Chain);
}

/// What `slow_worker` and the process tests exchange.
pub mod jobs {
    use super::*;

    /// Work for `ms` milliseconds, then answer `Done`.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "proctest.Job")]
    pub struct Job {
        /// The job's number, echoed in `Done`.
        pub id: u64,
        /// How long the job takes.
        pub ms: u64,
    }

    /// A job is done, by the worker process `pid`.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "proctest.Done")]
    pub struct Done {
        /// The job's number.
        pub id: u64,
        /// The worker's process id.
        pub pid: u32,
    }

    /// A large message, echoed back.
    #[derive(Debug, Clone, Serialize, Deserialize, Message)]
    #[message(name = "proctest.Blob")]
    pub struct Blob {
        /// The blob's number.
        pub id: u64,
        /// Its bytes.
        pub bytes: Vec<u8>,
    }
}

/// The jobs `job_worker` runs for the executor tests (the tests run the same types on
/// threads).
pub mod work {
    use super::*;
    use std::time::Duration;
    use strata::executor::Job;
    use strata::standard::Faulted;

    /// Sleeps `ms` milliseconds, then gives the worker's process id.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "exectest.Nap")]
    pub struct Nap {
        /// How long.
        pub ms: u64,
    }

    impl Job for Nap {
        type Output = u32;
        fn run(self) -> u32 {
            std::thread::sleep(Duration::from_millis(self.ms));
            std::process::id()
        }
    }

    /// The sum of `1..=n`, or a fault for `n == 0`, or a panic for `n == 13`.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "exectest.Sum")]
    pub struct Sum {
        /// Up to what.
        pub n: u64,
    }

    impl Job for Sum {
        type Output = Result<u64, Faulted>;
        fn run(self) -> Result<u64, Faulted> {
            match self.n {
                0 => Err(Faulted::new("nothing to sum")),
                13 => panic!("unlucky thirteen"),
                n => Ok((1..=n).sum()),
            }
        }
    }

    /// A job type `job_worker` does not register.
    #[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
    #[message(name = "exectest.Unregistered")]
    pub struct Unregistered;

    impl Job for Unregistered {
        type Output = u8;
        fn run(self) -> u8 {
            1
        }
    }
}

/// True when this program was started by a `Process` object (its stdin is then not the
/// test's to read).
pub fn started_as_child() -> bool {
    std::env::var_os("STRATA_LINK_FD").is_some()
}

/// The pipeline stages `pipe_worker` runs for the pipeline tests (the tests run the same
/// types on threads).
pub mod pipe {
    use super::*;
    use std::time::Duration;
    use strata::pipeline::{Emit, Frontend, Transport, WorkerInfo};
    use strata::standard::Faulted;

    /// Produces `0..upto`, each worker its round-robin share (resuming after what its
    /// predecessor produced).
    #[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
    #[message(name = "pipetest.Numbers")]
    pub struct Numbers {
        /// One past the last number.
        pub upto: u64,
        /// Fail (return an error) on these numbers instead of producing them.
        pub fail_on: Vec<u64>,
        /// The next number this worker produces.
        #[serde(skip)]
        next: u64,
        #[serde(skip)]
        step: u64,
    }

    impl Numbers {
        /// `0..upto`.
        pub fn upto(upto: u64) -> Self {
            Numbers {
                upto,
                ..Default::default()
            }
        }
    }

    impl Frontend for Numbers {
        type Item = u64;
        fn setup(&mut self, w: &WorkerInfo) -> Result<(), Faulted> {
            self.step = w.workers as u64;
            self.next = w.index as u64 + w.resume_after * self.step;
            Ok(())
        }
        fn produce(&mut self) -> Result<Option<u64>, Faulted> {
            if self.next >= self.upto {
                return Ok(None);
            }
            let n = self.next;
            self.next += self.step;
            if self.fail_on.contains(&n) {
                return Err(Faulted::new(format!("cannot produce {n}")));
            }
            Ok(Some(n))
        }
        fn length(&self) -> Option<u64> {
            Some(self.upto)
        }
    }

    /// `n` → `n`, `n + 1_000_000` (two outputs per item), after `sleep_ms`; fails on
    /// numbers in `fail_on`; in a worker process, SIGKILLs itself on `kill_on` unless the
    /// file `marker` exists (which it creates first, so the retry survives).
    #[derive(Debug, Clone, Default, Serialize, Deserialize, Message)]
    #[message(name = "pipetest.Fan")]
    pub struct Fan {
        /// Milliseconds per item.
        pub sleep_ms: u64,
        /// Numbers that fail every time.
        pub fail_on: Vec<u64>,
        /// The number that kills the worker once.
        pub kill_on: Option<u64>,
        /// The file that says it was killed already.
        pub marker: String,
    }

    impl Transport for Fan {
        type In = u64;
        type Out = u64;
        fn transport(&mut self, n: &u64, out: &mut Emit<u64>) -> Result<(), Faulted> {
            if self.sleep_ms > 0 {
                std::thread::sleep(Duration::from_millis(self.sleep_ms));
            }
            if self.kill_on == Some(*n) && std::fs::metadata(&self.marker).is_err() {
                std::fs::write(&self.marker, b"killed").map_err(|e| Faulted::new(e.to_string()))?;
                // SAFETY: signalling this very process.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
            if self.fail_on.contains(n) {
                return Err(Faulted::new(format!("{n} fails")));
            }
            out.send(*n);
            out.send(*n + 1_000_000);
            Ok(())
        }
    }
}
