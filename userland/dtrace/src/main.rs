//! dtrace(1).
fn main() {
    println!("dtrace: rdtrace {}", env!("CARGO_PKG_VERSION"));
}
