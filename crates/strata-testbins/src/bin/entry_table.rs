//! An entry point (`strata::process::entry`) for the process tests: `--x=X --y=Y` gives
//! a y-by-x table whose cell (row r, column c) is `r * 100 + c`, so a test can check
//! every number. An empty table (x or y zero) is a fault: exit status 1, one line on
//! stderr.

use strata::prelude::*;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Message)]
#[message(name = "proctest.Xy")]
struct Xy {
    x: usize,
    y: usize,
}

fn table(_cx: &mut ThreadContext, m: Xy) -> Result<Vec<Vec<f64>>, Faulted> {
    if m.x == 0 || m.y == 0 {
        return Err(Faulted::new(format!("an empty table ({} by {})", m.x, m.y)));
    }
    Ok((0..m.y)
        .map(|r| (0..m.x).map(|c| (r * 100 + c) as f64).collect())
        .collect())
}

fn main() -> std::process::ExitCode {
    strata::process::entry("entry_table", table)
}
