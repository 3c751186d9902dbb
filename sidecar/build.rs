//! The dashboard page is embedded with `include_dir!`, which stable Rust cannot
//! track: rebuild when any of its files changes.
fn main() {
    println!("cargo:rerun-if-changed=../php/resources/dashboard");
}
