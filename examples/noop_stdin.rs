//! The baseline for hook benchmarks: a binary that reads stdin to the end and exits,
//! which is the least any Claude Code hook can do.

use std::io::Read;

fn main() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
