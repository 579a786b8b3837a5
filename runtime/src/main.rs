//! The `concord` binary. Today it knows one verb, `demo`, which will run the
//! reference scenario (issue 6); until the protocols land it says so honestly.

use std::process::ExitCode;

fn main() -> ExitCode {
    let verb = std::env::args().nth(1);
    match verb.as_deref() {
        Some("demo") | None => {
            println!("concord demo: the reference scenario needs the Raft, gossip and quorum crates.");
            println!("This build has the shared transport ({}).", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("concord: unknown verb {other:?}; known verbs: demo");
            ExitCode::from(2)
        }
    }
}
