//! `strata key`: makes and reads the key files of authenticated links (`strata::net::keys`).
//!
//! * `strata key new --out FILE` writes a new static X25519 key pair (mode 0600, never over
//!   an existing file) and prints its public half, which the peers that must allow this
//!   node put in their `allow_peers`; with `--psk`, a 32-byte pre-shared key instead, and
//!   its id.
//! * `strata key public FILE` prints the public half of a static key file.
//! * `strata key id FILE` prints the id a link reports for the key (the `peer_key` of
//!   `Accepted` / `Connected`): `x25519:…` or `psk:…`.
//!
//! Every key file read must be private to its owner (mode 0600 or stricter).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strata::net::keys::{self, KeyError, StaticKey};

/// Options of `strata key`.
#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Write a new key to a file (mode 0600) and print its public half (or, with --psk,
    /// its id).
    New {
        /// The file to create (an existing file is never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Make a 32-byte pre-shared key instead of a static key pair.
        #[arg(long)]
        psk: bool,
    },
    /// Print the public half of a static key file (64 hex digits), for the peers'
    /// allow_peers.
    Public {
        /// The static key file.
        file: PathBuf,
    },
    /// Print the id links report for the key in a file (x25519:… or psk:…).
    Id {
        /// A static key or pre-shared key file.
        file: PathBuf,
    },
}

/// Runs `strata key ...`; errors go to stderr with exit status 1.
pub fn run(args: KeyArgs) -> ExitCode {
    match run_command(args.command) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strata key: {e}");
            ExitCode::from(1)
        }
    }
}

/// The line to print for `command`, having done what it asks.
fn run_command(command: KeyCommand) -> Result<String, KeyError> {
    match command {
        KeyCommand::New { out, psk: false } => {
            let key = StaticKey::generate()?;
            key.save(&out)?;
            eprintln!(
                "wrote a static key ({}) to {}; its public half follows",
                key.public().id(),
                out.display()
            );
            Ok(key.public().to_string())
        }
        KeyCommand::New { out, psk: true } => {
            let key = keys::generate_psk()?;
            keys::save_psk(&out, &key)?;
            eprintln!(
                "wrote a pre-shared key to {}; its id follows",
                out.display()
            );
            Ok(keys::psk_id(&key))
        }
        KeyCommand::Public { file } => Ok(StaticKey::load(&file)?.public().to_string()),
        KeyCommand::Id { file } => key_id(&file),
    }
}

/// The id of the key in `file`, whichever kind it holds.
fn key_id(file: &Path) -> Result<String, KeyError> {
    match StaticKey::load(file) {
        Ok(key) => Ok(key.public().id()),
        // Not a static key file: perhaps a pre-shared one (else the first error stands).
        Err(e @ KeyError::Format { .. }) => keys::load_psk(file)
            .map(|k| keys::psk_id(&k))
            .map_err(|_| e),
        Err(e) => Err(e),
    }
}
